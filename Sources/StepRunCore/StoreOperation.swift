/// The table of operations: one case per operation of the contract, and what every layer needs to
/// know of it besides its arguments (those are `StoreRequest`'s cases).
///
/// The raw value is the operation's field number in `steprun.v1.Request.call`, which
/// `TransactionOperation.operation` shares for the write operations; the wire codec looks messages up
/// by it, so one number names an operation everywhere. Adding an operation: docs/ARCHITECTURE.md,
/// "Adding an operation".
public enum StoreOperation: UInt32, CaseIterable, Sendable, Hashable {
    case beginStep = 20
    case scheduleStep = 21
    case scheduleSteps = 22
    case deletePendingSteps = 23
    case completeStep = 30
    case completeManualStep = 31
    case failStep = 32
    case persistPauseResume = 33
    case persistApprovalResume = 34
    case recordFailureRecovery = 35
    case updateRecovery = 36
    case getStepRun = 40
    case completedSteps = 41
    case completedOutputs = 42
    case completedStepRunsForCompensation = 43
    case stepStatuses = 44
    case beginAttempt = 50
    case completeAttempt = 51
    case failAttempt = 52
    case recordAttempt = 53
    case attemptCount = 54
    case latestAttempt = 55
    case listAttempts = 56
    case purgeRun = 60
    case transaction = 61

    /// How an operation touches the store.
    public enum Access: Sendable, Hashable {
        /// Only reads (may share a snapshot, may run inline).
        case read
        /// Writes, and may appear inside a `transaction`.
        case transactionalWrite
        /// Writes, but stands alone (`purge_run`, `transaction` itself).
        case write
    }

    /// The table itself: the contract name (also the proto field name) and the access of each.
    private var entry: (name: String, access: Access) {
        switch self {
        case .beginStep: ("begin_step", .transactionalWrite)
        case .scheduleStep: ("schedule_step", .transactionalWrite)
        case .scheduleSteps: ("schedule_steps", .transactionalWrite)
        case .deletePendingSteps: ("delete_pending_steps", .transactionalWrite)
        case .completeStep: ("complete_step", .transactionalWrite)
        case .completeManualStep: ("complete_manual_step", .transactionalWrite)
        case .failStep: ("fail_step", .transactionalWrite)
        case .persistPauseResume: ("persist_pause_resume", .transactionalWrite)
        case .persistApprovalResume: ("persist_approval_resume", .transactionalWrite)
        case .recordFailureRecovery: ("record_failure_recovery", .transactionalWrite)
        case .updateRecovery: ("update_recovery", .transactionalWrite)
        case .getStepRun: ("get_step_run", .read)
        case .completedSteps: ("completed_steps", .read)
        case .completedOutputs: ("completed_outputs", .read)
        case .completedStepRunsForCompensation: ("completed_step_runs_for_compensation", .read)
        case .stepStatuses: ("step_statuses", .read)
        case .beginAttempt: ("begin_attempt", .transactionalWrite)
        case .completeAttempt: ("complete_attempt", .transactionalWrite)
        case .failAttempt: ("fail_attempt", .transactionalWrite)
        case .recordAttempt: ("record_attempt", .transactionalWrite)
        case .attemptCount: ("attempt_count", .read)
        case .latestAttempt: ("latest_attempt", .read)
        case .listAttempts: ("list_attempts", .read)
        case .purgeRun: ("purge_run", .write)
        case .transaction: ("transaction", .write)
        }
    }

    /// The contract name (`begin_step`), used in logs, metrics and errors; also the name of the
    /// operation's member of `Request.call`.
    public var name: String { entry.name }

    public var access: Access { entry.access }

    /// True when the operation only reads.
    public var isReadOnly: Bool { access == .read }

    /// True for the write operations that may appear inside a `transaction`.
    public var isTransactional: Bool { access == .transactionalWrite }

    /// The operation's member number in `Request.call` (and, for the transactional writes,
    /// `TransactionOperation.operation`).
    public var fieldNumber: UInt32 { rawValue }

    /// The operation whose member of `Request.call` is numbered `fieldNumber`.
    public init?(fieldNumber: UInt32) {
        self.init(rawValue: fieldNumber)
    }
}

extension StoreRequest {
    /// Which operation this is: the one switch from a request's arguments to the table.
    public var operation: StoreOperation {
        switch self {
        case .beginStep: .beginStep
        case .scheduleStep: .scheduleStep
        case .scheduleSteps: .scheduleSteps
        case .deletePendingSteps: .deletePendingSteps
        case .completeStep: .completeStep
        case .completeManualStep: .completeManualStep
        case .failStep: .failStep
        case .persistPauseResume: .persistPauseResume
        case .persistApprovalResume: .persistApprovalResume
        case .recordFailureRecovery: .recordFailureRecovery
        case .updateRecovery: .updateRecovery
        case .getStepRun: .getStepRun
        case .completedSteps: .completedSteps
        case .completedOutputs: .completedOutputs
        case .completedStepRunsForCompensation: .completedStepRunsForCompensation
        case .stepStatuses: .stepStatuses
        case .beginAttempt: .beginAttempt
        case .completeAttempt: .completeAttempt
        case .failAttempt: .failAttempt
        case .recordAttempt: .recordAttempt
        case .attemptCount: .attemptCount
        case .latestAttempt: .latestAttempt
        case .listAttempts: .listAttempts
        case .purgeRun: .purgeRun
        case .transaction: .transaction
        }
    }

    /// The operation's contract name (`begin_step`), used in logs, metrics and errors.
    public var operationName: String { operation.name }

    /// True for the write operations that may appear inside a `transaction`.
    public var isTransactional: Bool { operation.isTransactional }

    /// True when the operation only reads.
    public var isReadOnly: Bool { operation.isReadOnly }
}
