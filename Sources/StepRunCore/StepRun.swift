import Foundation

/// One step of one workflow run, as stored.
public struct StepRun: Sendable, Hashable {
    /// Assigned by the store (a time-ordered UUIDv7).
    public var id: UUID
    /// The caller's workflow run; the store does not own runs.
    public var runID: UUID
    /// The step's name, unique within the run.
    public var step: String
    public var status: StepStatus
    /// Never null; `{}` when the caller gave none.
    public var input: JSONPayload
    public var output: JSONPayload?
    public var lastError: JSONPayload?
    public var recovery: JSONPayload?
    public var resume: JSONPayload?
    public var manual: JSONPayload?
    public var insertedAt: Timestamp
    /// Moves on every change.
    public var updatedAt: Timestamp
    /// When the forward execution completed.
    public var completedAt: Timestamp?

    public init(
        id: UUID, runID: UUID, step: String, status: StepStatus,
        input: JSONPayload, output: JSONPayload? = nil, lastError: JSONPayload? = nil,
        recovery: JSONPayload? = nil, resume: JSONPayload? = nil, manual: JSONPayload? = nil,
        insertedAt: Timestamp, updatedAt: Timestamp, completedAt: Timestamp? = nil
    ) {
        self.id = id
        self.runID = runID
        self.step = step
        self.status = status
        self.input = input
        self.output = output
        self.lastError = lastError
        self.recovery = recovery
        self.resume = resume
        self.manual = manual
        self.insertedAt = insertedAt
        self.updatedAt = updatedAt
        self.completedAt = completedAt
    }
}

/// One try of a step run.
public struct StepAttempt: Sendable, Hashable {
    public var id: UUID
    public var stepRunID: UUID
    /// 1, 2, … unique per step run.
    public var attemptNumber: Int
    public var status: AttemptStatus
    public var error: JSONPayload?
    public var insertedAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: UUID, stepRunID: UUID, attemptNumber: Int, status: AttemptStatus,
        error: JSONPayload? = nil, insertedAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.stepRunID = stepRunID
        self.attemptNumber = attemptNumber
        self.status = status
        self.error = error
        self.insertedAt = insertedAt
        self.updatedAt = updatedAt
    }
}

/// One entry of a fan-out (`scheduleSteps`).
public struct ScheduledStep: Sendable, Hashable {
    public var step: String
    public var input: JSONPayload
    public var recovery: JSONPayload?

    public init(step: String, input: JSONPayload = [:], recovery: JSONPayload? = nil) {
        self.step = step
        self.input = input
        self.recovery = recovery
    }
}

/// What `purgeRun` deleted.
public struct PurgeCounts: Sendable, Hashable {
    public var stepRuns: Int
    public var attempts: Int

    public init(stepRuns: Int, attempts: Int) {
        self.stepRuns = stepRuns
        self.attempts = attempts
    }
}
