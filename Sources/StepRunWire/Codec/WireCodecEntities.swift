import CStepRunProto
import StepRunCore

// Conversions of the stored entities (StepRun, StepAttempt) and the protocol enums between the
// domain types and their protobuf-c structs. Used by requests, results and error details alike.

// MARK: Enums

extension StepStatus {
    var wire: Steprun__V1__StepStatus {
        switch self {
        case .pending: STEPRUN__V1__STEP_STATUS__STEP_STATUS_PENDING
        case .running: STEPRUN__V1__STEP_STATUS__STEP_STATUS_RUNNING
        case .completed: STEPRUN__V1__STEP_STATUS__STEP_STATUS_COMPLETED
        case .failed: STEPRUN__V1__STEP_STATUS__STEP_STATUS_FAILED
        }
    }

    /// nil for UNSPECIFIED and for values this version does not know.
    init?(wire: Steprun__V1__StepStatus) {
        switch wire {
        case STEPRUN__V1__STEP_STATUS__STEP_STATUS_PENDING: self = .pending
        case STEPRUN__V1__STEP_STATUS__STEP_STATUS_RUNNING: self = .running
        case STEPRUN__V1__STEP_STATUS__STEP_STATUS_COMPLETED: self = .completed
        case STEPRUN__V1__STEP_STATUS__STEP_STATUS_FAILED: self = .failed
        default: return nil
        }
    }
}

extension AttemptStatus {
    var wire: Steprun__V1__AttemptStatus {
        switch self {
        case .running: STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_RUNNING
        case .completed: STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_COMPLETED
        case .failed: STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_FAILED
        }
    }

    init?(wire: Steprun__V1__AttemptStatus) {
        switch wire {
        case STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_RUNNING: self = .running
        case STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_COMPLETED: self = .completed
        case STEPRUN__V1__ATTEMPT_STATUS__ATTEMPT_STATUS_FAILED: self = .failed
        default: return nil
        }
    }
}

extension BeginDecision {
    var wire: Steprun__V1__BeginDecision {
        switch self {
        case .execute: STEPRUN__V1__BEGIN_DECISION__BEGIN_DECISION_EXECUTE
        case .skip: STEPRUN__V1__BEGIN_DECISION__BEGIN_DECISION_SKIP
        }
    }

    init?(wire: Steprun__V1__BeginDecision) {
        switch wire {
        case STEPRUN__V1__BEGIN_DECISION__BEGIN_DECISION_EXECUTE: self = .execute
        case STEPRUN__V1__BEGIN_DECISION__BEGIN_DECISION_SKIP: self = .skip
        default: return nil
        }
    }
}

extension ScheduleDecision {
    var wire: Steprun__V1__ScheduleDecision {
        switch self {
        case .schedule: STEPRUN__V1__SCHEDULE_DECISION__SCHEDULE_DECISION_SCHEDULE
        case .skip: STEPRUN__V1__SCHEDULE_DECISION__SCHEDULE_DECISION_SKIP
        }
    }

    init?(wire: Steprun__V1__ScheduleDecision) {
        switch wire {
        case STEPRUN__V1__SCHEDULE_DECISION__SCHEDULE_DECISION_SCHEDULE: self = .schedule
        case STEPRUN__V1__SCHEDULE_DECISION__SCHEDULE_DECISION_SKIP: self = .skip
        default: return nil
        }
    }
}

extension RecoveryStrategy {
    var wire: Steprun__V1__RecoveryStrategy {
        switch self {
        case .compensation: STEPRUN__V1__RECOVERY_STRATEGY__RECOVERY_STRATEGY_COMPENSATION
        case .undo: STEPRUN__V1__RECOVERY_STRATEGY__RECOVERY_STRATEGY_UNDO
        }
    }

    init?(wire: Steprun__V1__RecoveryStrategy) {
        switch wire {
        case STEPRUN__V1__RECOVERY_STRATEGY__RECOVERY_STRATEGY_COMPENSATION: self = .compensation
        case STEPRUN__V1__RECOVERY_STRATEGY__RECOVERY_STRATEGY_UNDO: self = .undo
        default: return nil
        }
    }
}

extension FieldReader {
    /// Refuses UNSPECIFIED (0) and values from a newer protocol, naming the field.
    func known<Value>(_ value: Value?, raw: UInt32, _ field: String, _ kind: String) throws(StepRunError) -> Value {
        guard let value else {
            throw invalid(field, raw == 0 ? "is required" : "must be a known \(kind), got \(raw)")
        }
        return value
    }

    func stepStatus(_ wire: Steprun__V1__StepStatus, _ field: String) throws(StepRunError) -> StepStatus {
        try known(StepStatus(wire: wire), raw: wire.rawValue, field, "step status")
    }

    func attemptStatus(_ wire: Steprun__V1__AttemptStatus, _ field: String) throws(StepRunError) -> AttemptStatus {
        try known(AttemptStatus(wire: wire), raw: wire.rawValue, field, "attempt status")
    }
}

// MARK: StepRun

extension EncodeArena {
    func stepRun(_ stepRun: StepRun) -> UnsafeMutablePointer<Steprun__V1__StepRun> {
        let message = self.message(steprun__v1__step_run__init)
        message.pointee.id = binary(stepRun.id.bytes)
        message.pointee.run_id = binary(stepRun.runID.bytes)
        message.pointee.step = binary(stepRun.step)
        message.pointee.status = stepRun.status.wire
        message.pointee.input = binary(stepRun.input.utf8)
        if let output = stepRun.output {
            message.pointee._output_case = STEPRUN__V1__STEP_RUN___OUTPUT_OUTPUT
            message.pointee.output = binary(output.utf8)
        }
        if let lastError = stepRun.lastError {
            message.pointee._last_error_case = STEPRUN__V1__STEP_RUN___LAST_ERROR_LAST_ERROR
            message.pointee.last_error = binary(lastError.utf8)
        }
        if let recovery = stepRun.recovery {
            message.pointee._recovery_case = STEPRUN__V1__STEP_RUN___RECOVERY_RECOVERY
            message.pointee.recovery = binary(recovery.utf8)
        }
        if let resume = stepRun.resume {
            message.pointee._resume_case = STEPRUN__V1__STEP_RUN___RESUME_RESUME
            message.pointee.resume = binary(resume.utf8)
        }
        if let manual = stepRun.manual {
            message.pointee._manual_case = STEPRUN__V1__STEP_RUN___MANUAL_MANUAL
            message.pointee.manual = binary(manual.utf8)
        }
        message.pointee.inserted_at = stepRun.insertedAt.microsecondsSinceEpoch
        message.pointee.updated_at = stepRun.updatedAt.microsecondsSinceEpoch
        if let completedAt = stepRun.completedAt {
            message.pointee._completed_at_case = STEPRUN__V1__STEP_RUN___COMPLETED_AT_COMPLETED_AT
            message.pointee.completed_at = completedAt.microsecondsSinceEpoch
        }
        return message
    }

    func stepAttempt(_ attempt: StepAttempt) -> UnsafeMutablePointer<Steprun__V1__StepAttempt> {
        let message = self.message(steprun__v1__step_attempt__init)
        message.pointee.id = binary(attempt.id.bytes)
        message.pointee.step_run_id = binary(attempt.stepRunID.bytes)
        message.pointee.attempt_number = Int64(attempt.attemptNumber)
        message.pointee.status = attempt.status.wire
        if let error = attempt.error {
            message.pointee._error_case = STEPRUN__V1__STEP_ATTEMPT___ERROR_ERROR
            message.pointee.error = binary(error.utf8)
        }
        message.pointee.inserted_at = attempt.insertedAt.microsecondsSinceEpoch
        message.pointee.updated_at = attempt.updatedAt.microsecondsSinceEpoch
        return message
    }
}

extension FieldReader {
    func stepRun(_ message: UnsafeMutablePointer<Steprun__V1__StepRun>) throws(StepRunError) -> StepRun {
        let m = message.pointee
        return StepRun(
            id: try uuid(m.id, "id"),
            runID: try uuid(m.run_id, "run_id"),
            step: try text(m.step, "step"),
            status: try stepStatus(m.status, "status"),
            input: try jsonOrEmpty(m.input, "input"),
            output: try optionalJSON(m._output_case == STEPRUN__V1__STEP_RUN___OUTPUT_OUTPUT, m.output, "output"),
            lastError: try optionalJSON(
                m._last_error_case == STEPRUN__V1__STEP_RUN___LAST_ERROR_LAST_ERROR, m.last_error, "last_error"),
            recovery: try optionalJSON(
                m._recovery_case == STEPRUN__V1__STEP_RUN___RECOVERY_RECOVERY, m.recovery, "recovery"),
            resume: try optionalJSON(m._resume_case == STEPRUN__V1__STEP_RUN___RESUME_RESUME, m.resume, "resume"),
            manual: try optionalJSON(m._manual_case == STEPRUN__V1__STEP_RUN___MANUAL_MANUAL, m.manual, "manual"),
            insertedAt: Timestamp(microsecondsSinceEpoch: m.inserted_at),
            updatedAt: Timestamp(microsecondsSinceEpoch: m.updated_at),
            completedAt: m._completed_at_case == STEPRUN__V1__STEP_RUN___COMPLETED_AT_COMPLETED_AT
                ? Timestamp(microsecondsSinceEpoch: m.completed_at) : nil
        )
    }

    func stepAttempt(_ message: UnsafeMutablePointer<Steprun__V1__StepAttempt>) throws(StepRunError) -> StepAttempt {
        let m = message.pointee
        return StepAttempt(
            id: try uuid(m.id, "id"),
            stepRunID: try uuid(m.step_run_id, "step_run_id"),
            attemptNumber: try attemptNumber(m.attempt_number, "attempt_number"),
            status: try attemptStatus(m.status, "status"),
            error: try optionalJSON(m._error_case == STEPRUN__V1__STEP_ATTEMPT___ERROR_ERROR, m.error, "error"),
            insertedAt: Timestamp(microsecondsSinceEpoch: m.inserted_at),
            updatedAt: Timestamp(microsecondsSinceEpoch: m.updated_at)
        )
    }

    /// Any int64 fits Swift's `Int` on the 64-bit platforms steprund supports; the range rule
    /// (1 … Int32.max) is the store's validation, so an out-of-range number reaches it unchanged.
    func attemptNumber(_ value: Int64, _ field: String) throws(StepRunError) -> Int {
        guard let number = Int(exactly: value) else { throw invalid(field, "is out of range: \(value)") }
        return number
    }
}
