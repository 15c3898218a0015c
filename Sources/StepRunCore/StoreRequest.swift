import Foundation

/// One call to the store: every operation of the contract, with its arguments.
///
/// The repository, the wire protocol and the client all speak this type, so each side has one
/// place that knows about every operation. `StepRunStore`'s typed methods build these; what is known
/// of an operation beyond its arguments (name, field number, access) is `StoreOperation`'s table.
public enum StoreRequest: Sendable, Hashable {
    case beginStep(runID: UUID, step: String, input: JSONPayload, recovery: JSONPayload?)
    case scheduleStep(runID: UUID, step: String, input: JSONPayload, recovery: JSONPayload?)
    case scheduleSteps(runID: UUID, steps: [ScheduledStep])
    case deletePendingSteps(runID: UUID, steps: [String])
    case completeStep(stepRunID: UUID, output: JSONPayload)
    case completeManualStep(stepRunID: UUID, output: JSONPayload, manual: JSONPayload)
    case failStep(stepRunID: UUID, error: JSONPayload)
    case persistPauseResume(stepRunID: UUID, output: JSONPayload, target: ResumeTarget)
    case persistApprovalResume(stepRunID: UUID, okTarget: ResumeTarget, errorTarget: ResumeTarget, outputKey: String?)
    case recordFailureRecovery(stepRunID: UUID, strategy: RecoveryStrategy, target: String)
    case updateRecovery(stepRunID: UUID, recovery: JSONPayload)
    case getStepRun(runID: UUID, step: String)
    case completedSteps(runID: UUID, page: PageRequest = .whole)
    case completedOutputs(runID: UUID, page: PageRequest = .whole)
    case completedStepRunsForCompensation(runID: UUID, page: PageRequest = .whole)
    case stepStatuses(runID: UUID, page: PageRequest = .whole)
    case beginAttempt(stepRunID: UUID)
    case completeAttempt(attemptID: UUID)
    case failAttempt(attemptID: UUID, error: JSONPayload)
    case recordAttempt(stepRunID: UUID, attemptNumber: Int, status: AttemptStatus, error: JSONPayload?)
    case attemptCount(stepRunID: UUID)
    case latestAttempt(stepRunID: UUID)
    case listAttempts(stepRunID: UUID, page: PageRequest = .whole)
    case purgeRun(runID: UUID)
    /// Several write operations applied all or nothing, in order.
    case transaction([StoreRequest])
}

/// What a successful call returns; one case per shape of result.
public enum StoreResult: Sendable, Hashable {
    /// `beginStep`.
    case begin(StepRun, BeginDecision)
    /// `scheduleStep`.
    case schedule(StepRun, ScheduleDecision)
    /// `scheduleSteps`: the newly scheduled steps, in the order given.
    case scheduledSteps([String])
    /// `deletePendingSteps`: how many pending rows were deleted.
    case deletedCount(Int)
    /// The step run after a fenced update or `updateRecovery`.
    case stepRun(StepRun)
    /// `getStepRun`: nil when there is no such step.
    case foundStepRun(StepRun?)
    /// `completedSteps`; `next` continues the list (nil: this was its last page).
    case steps([String], next: PageToken? = nil)
    /// `completedOutputs`.
    case outputs([JSONPayload], next: PageToken? = nil)
    /// `completedStepRunsForCompensation`.
    case stepRuns([StepRun], next: PageToken? = nil)
    /// `stepStatuses`.
    case statuses([String: StepStatus], next: PageToken? = nil)
    /// `beginAttempt`, `completeAttempt`, `failAttempt`, `recordAttempt`.
    case attempt(StepAttempt)
    /// `attemptCount`.
    case attemptCount(Int)
    /// `latestAttempt`: nil when none was recorded.
    case latestAttempt(StepAttempt?)
    /// `listAttempts`, by attempt number.
    case attempts([StepAttempt], next: PageToken? = nil)
    /// `purgeRun`.
    case purged(PurgeCounts)
    /// `transaction`: one result per operation, in order.
    case transaction([StoreResult])
}
