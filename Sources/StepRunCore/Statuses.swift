/// Lifecycle of one step of one workflow run.
public enum StepStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case pending
    case running
    case completed
    case failed
}

/// Lifecycle of one try of a step run.
public enum AttemptStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case running
    case completed
    case failed
}

/// What `beginStep` tells the caller to do with the delivery it holds.
public enum BeginDecision: String, Sendable, Hashable, Codable {
    /// This delivery owns the step: run it.
    case execute
    /// The step already ran, is running, or another delivery claimed it: drop this delivery.
    case skip
}

/// What `scheduleStep` did.
public enum ScheduleDecision: String, Sendable, Hashable, Codable {
    /// A new `pending` row was written.
    case schedule
    /// The step already existed (in any status) and was left unchanged.
    case skip
}

/// How a failed step is to be recovered (`recordFailureRecovery`).
public enum RecoveryStrategy: String, Sendable, Hashable, CaseIterable, Codable {
    case compensation
    case undo
}

/// Where a paused or approval step resumes: another step, or completion of the run.
public enum ResumeTarget: Sendable, Hashable {
    /// Continue with the named step.
    case step(String)
    /// Complete the run.
    case complete

    /// The reserved name that stands for "complete the run" in stored resume metadata.
    public static let completeMarker = "__complete__"

    /// The text stored in resume metadata.
    public var storedName: String {
        switch self {
        case .step(let name): name
        case .complete: Self.completeMarker
        }
    }

    /// Reads a stored target name back.
    public init(storedName: String) {
        self = storedName == Self.completeMarker ? .complete : .step(storedName)
    }
}
