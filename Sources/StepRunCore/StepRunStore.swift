import Foundation

/// Anything that performs store operations: the Postgres repository in the daemon, and the client
/// library talking to a daemon. Both get the same typed methods from the extension below.
public protocol StepRunStore: Sendable {
    /// Performs one operation. Errors thrown are `StepRunError`.
    ///
    /// - Parameter deadline: when the caller stops waiting; nil for the store's default.
    func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult

    /// Starts one operation without suspending: `completion` is called exactly once, on any
    /// thread, with its outcome. The returned handle cancels the call if it has not started work.
    ///
    /// The daemon's request path uses this so a call crosses as few threads as possible; the
    /// default runs `perform` in a task. (A store that can also run a quick call on the caller's
    /// own thread says so by adopting `InlineCapableStore`.)
    func start(
        _ request: StoreRequest, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle
}

/// Cancels a call started with `StepRunStore.start` (a no-op once the call has started work).
public struct StoreCallHandle: Sendable {
    private let onCancel: @Sendable () -> Void

    public init(cancel: @escaping @Sendable () -> Void) {
        self.onCancel = cancel
    }

    public func cancel() {
        onCancel()
    }
}

extension StepRunStore {
    public func start(
        _ request: StoreRequest, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle {
        let task = Task {
            do {
                completion(.success(try await perform(request, deadline: deadline)))
            } catch let error as StepRunError {
                completion(.failure(error))
            } catch is CancellationError {
                completion(.failure(.cancelled("the call was cancelled")))
            } catch {
                completion(.failure(.internal("unexpected error: \(error)")))
            }
        }
        return StoreCallHandle { task.cancel() }
    }
}

extension StepRunStore {
    @inline(__always)
    private func call(_ request: StoreRequest, _ timeout: Duration?) async throws -> StoreResult {
        try await perform(request, deadline: timeout.map { ContinuousClock.now.advanced(by: $0) })
    }

    private func unexpected(_ result: StoreResult, _ request: StoreRequest) -> StepRunError {
        .internal("unexpected result \(result) for \(request.operationName)")
    }

    // MARK: Claiming and scheduling

    /// Claims a step for this delivery: `.execute` if it should run, `.skip` if it ran or another delivery claimed it.
    public func beginStep(
        runID: UUID, step: String, input: JSONPayload = .empty, recovery: JSONPayload? = nil, timeout: Duration? = nil
    ) async throws -> (StepRun, BeginDecision) {
        let request = StoreRequest.beginStep(runID: runID, step: step, input: input, recovery: recovery)
        guard case .begin(let stepRun, let decision) = try await call(request, timeout) else { throw StepRunError.internal("unexpected result") }
        return (stepRun, decision)
    }

    /// Records that a step is scheduled but not yet claimed: `.schedule`, or `.skip` if it already exists.
    public func scheduleStep(
        runID: UUID, step: String, input: JSONPayload = .empty, recovery: JSONPayload? = nil, timeout: Duration? = nil
    ) async throws -> (StepRun, ScheduleDecision) {
        let request = StoreRequest.scheduleStep(runID: runID, step: step, input: input, recovery: recovery)
        guard case .schedule(let stepRun, let decision) = try await call(request, timeout) else { throw StepRunError.internal("unexpected result") }
        return (stepRun, decision)
    }

    /// Fan-out: schedules several steps at once, all or nothing; returns those newly scheduled, in the order given.
    public func scheduleSteps(runID: UUID, steps: [ScheduledStep], timeout: Duration? = nil) async throws -> [String] {
        let request = StoreRequest.scheduleSteps(runID: runID, steps: steps)
        let result = try await call(request, timeout)
        guard case .scheduledSteps(let names) = result else { throw unexpected(result, request) }
        return names
    }

    /// Deletes the named steps that are still pending; returns how many were deleted.
    public func deletePendingSteps(runID: UUID, steps: [String], timeout: Duration? = nil) async throws -> Int {
        let request = StoreRequest.deletePendingSteps(runID: runID, steps: steps)
        let result = try await call(request, timeout)
        guard case .deletedCount(let count) = result else { throw unexpected(result, request) }
        return count
    }

    // MARK: Finishing a running step

    private func updated(_ request: StoreRequest, _ timeout: Duration?) async throws -> StepRun {
        let result = try await call(request, timeout)
        guard case .stepRun(let stepRun) = result else { throw unexpected(result, request) }
        return stepRun
    }

    /// Marks a running step completed with its output.
    @discardableResult
    public func completeStep(stepRunID: UUID, output: JSONPayload, timeout: Duration? = nil) async throws -> StepRun {
        try await updated(.completeStep(stepRunID: stepRunID, output: output), timeout)
    }

    /// Marks a running (paused manual) step completed, recording who acted and how.
    @discardableResult
    public func completeManualStep(
        stepRunID: UUID, output: JSONPayload, manual: JSONPayload, timeout: Duration? = nil
    ) async throws -> StepRun {
        try await updated(.completeManualStep(stepRunID: stepRunID, output: output, manual: manual), timeout)
    }

    /// Marks a running step failed with its error.
    @discardableResult
    public func failStep(stepRunID: UUID, error: JSONPayload, timeout: Duration? = nil) async throws -> StepRun {
        try await updated(.failStep(stepRunID: stepRunID, error: error), timeout)
    }

    /// Records pause-resume metadata on a running step without completing it.
    @discardableResult
    public func persistPauseResume(
        stepRunID: UUID, output: JSONPayload, target: ResumeTarget, timeout: Duration? = nil
    ) async throws -> StepRun {
        try await updated(.persistPauseResume(stepRunID: stepRunID, output: output, target: target), timeout)
    }

    /// Records approval-resume metadata on a running step without completing it.
    @discardableResult
    public func persistApprovalResume(
        stepRunID: UUID, okTarget: ResumeTarget, errorTarget: ResumeTarget, outputKey: String? = nil,
        timeout: Duration? = nil
    ) async throws -> StepRun {
        try await updated(
            .persistApprovalResume(stepRunID: stepRunID, okTarget: okTarget, errorTarget: errorTarget, outputKey: outputKey),
            timeout)
    }

    /// Records how a failed step is to be recovered, merged into its recovery metadata.
    @discardableResult
    public func recordFailureRecovery(
        stepRunID: UUID, strategy: RecoveryStrategy, target: String, timeout: Duration? = nil
    ) async throws -> StepRun {
        try await updated(.recordFailureRecovery(stepRunID: stepRunID, strategy: strategy, target: target), timeout)
    }

    /// Replaces a step run's recovery metadata in any status.
    @discardableResult
    public func updateRecovery(stepRunID: UUID, recovery: JSONPayload, timeout: Duration? = nil) async throws -> StepRun {
        try await updated(.updateRecovery(stepRunID: stepRunID, recovery: recovery), timeout)
    }

    // MARK: Reading a run

    /// The step run for one step of a run, or nil.
    public func getStepRun(runID: UUID, step: String, timeout: Duration? = nil) async throws -> StepRun? {
        let request = StoreRequest.getStepRun(runID: runID, step: step)
        let result = try await call(request, timeout)
        guard case .foundStepRun(let stepRun) = result else { throw unexpected(result, request) }
        return stepRun
    }

    // The lists (completed steps, outputs, compensation, statuses, attempts) are in StoreLists.swift.

    // MARK: Attempt history

    private func attempt(_ request: StoreRequest, _ timeout: Duration?) async throws -> StepAttempt {
        let result = try await call(request, timeout)
        guard case .attempt(let attempt) = result else { throw unexpected(result, request) }
        return attempt
    }

    /// Starts the next attempt (1, 2, …) of a step run.
    public func beginAttempt(stepRunID: UUID, timeout: Duration? = nil) async throws -> StepAttempt {
        try await attempt(.beginAttempt(stepRunID: stepRunID), timeout)
    }

    /// Marks a running attempt completed.
    @discardableResult
    public func completeAttempt(attemptID: UUID, timeout: Duration? = nil) async throws -> StepAttempt {
        try await attempt(.completeAttempt(attemptID: attemptID), timeout)
    }

    /// Marks a running attempt failed with its error.
    @discardableResult
    public func failAttempt(attemptID: UUID, error: JSONPayload, timeout: Duration? = nil) async throws -> StepAttempt {
        try await attempt(.failAttempt(attemptID: attemptID, error: error), timeout)
    }

    /// Inserts an attempt with an explicit number; `alreadyExists` if that number is taken.
    @discardableResult
    public func recordAttempt(
        stepRunID: UUID, attemptNumber: Int, status: AttemptStatus, error: JSONPayload? = nil, timeout: Duration? = nil
    ) async throws -> StepAttempt {
        try await attempt(.recordAttempt(stepRunID: stepRunID, attemptNumber: attemptNumber, status: status, error: error), timeout)
    }

    /// How many attempts a step run has.
    public func attemptCount(stepRunID: UUID, timeout: Duration? = nil) async throws -> Int {
        let request = StoreRequest.attemptCount(stepRunID: stepRunID)
        let result = try await call(request, timeout)
        guard case .attemptCount(let count) = result else { throw unexpected(result, request) }
        return count
    }

    /// The attempt with the highest number, or nil.
    public func latestAttempt(stepRunID: UUID, timeout: Duration? = nil) async throws -> StepAttempt? {
        let request = StoreRequest.latestAttempt(stepRunID: stepRunID)
        let result = try await call(request, timeout)
        guard case .latestAttempt(let attempt) = result else { throw unexpected(result, request) }
        return attempt
    }

    // MARK: Run maintenance and atomic groups

    /// Deletes every step run and attempt of a run.
    @discardableResult
    public func purgeRun(runID: UUID, timeout: Duration? = nil) async throws -> PurgeCounts {
        let request = StoreRequest.purgeRun(runID: runID)
        let result = try await call(request, timeout)
        guard case .purged(let counts) = result else { throw unexpected(result, request) }
        return counts
    }

    /// Runs write operations in one database transaction, all or nothing.
    ///
    /// On failure throws `StepRunError.transactionFailed(index:cause:)` naming the operation that failed.
    public func transaction(_ operations: [StoreRequest], timeout: Duration? = nil) async throws -> [StoreResult] {
        let request = StoreRequest.transaction(operations)
        let result = try await call(request, timeout)
        guard case .transaction(let results) = result else { throw unexpected(result, request) }
        return results
    }
}
