import CStepRunProto
import StepRunCore

// C `Request` → Call: every field checked (UUID lengths, UTF-8, JSON objects, known enums, required
// submessages). Size limits and step-name rules are left to `StoreRequest.validate(limits:)`.

/// The first field number of `Request.call` and `TransactionOperation.operation`; unknown fields at or
/// above it are calls from a newer protocol version.
private let firstCallField: UInt32 = 10

extension FieldReader {
    func call(_ request: UnsafeMutablePointer<Steprun__V1__Request>) throws(StepRunError) -> Call {
        let r = request.pointee
        switch r.call_case {
        case STEPRUN__V1__REQUEST__CALL_HELLO:
            let hello = try required(r.hello, "hello").pointee
            let token = try string(hello.token, "hello.token")
            return .hello(Hello(
                protocolVersion: hello.protocol_version,
                clientName: try string(hello.client_name, "hello.client_name"),
                token: token.isEmpty ? nil : token))
        case STEPRUN__V1__REQUEST__CALL_HEALTH:
            return .health
        case STEPRUN__V1__REQUEST__CALL_BEGIN_STEP: return .store(try beginStep(required(r.begin_step, "begin_step")))
        case STEPRUN__V1__REQUEST__CALL_SCHEDULE_STEP: return .store(try scheduleStep(required(r.schedule_step, "schedule_step")))
        case STEPRUN__V1__REQUEST__CALL_SCHEDULE_STEPS: return .store(try scheduleSteps(required(r.schedule_steps, "schedule_steps")))
        case STEPRUN__V1__REQUEST__CALL_DELETE_PENDING_STEPS:
            return .store(try deletePendingSteps(required(r.delete_pending_steps, "delete_pending_steps")))
        case STEPRUN__V1__REQUEST__CALL_COMPLETE_STEP: return .store(try completeStep(required(r.complete_step, "complete_step")))
        case STEPRUN__V1__REQUEST__CALL_COMPLETE_MANUAL_STEP:
            return .store(try completeManualStep(required(r.complete_manual_step, "complete_manual_step")))
        case STEPRUN__V1__REQUEST__CALL_FAIL_STEP: return .store(try failStep(required(r.fail_step, "fail_step")))
        case STEPRUN__V1__REQUEST__CALL_PERSIST_PAUSE_RESUME:
            return .store(try persistPauseResume(required(r.persist_pause_resume, "persist_pause_resume")))
        case STEPRUN__V1__REQUEST__CALL_PERSIST_APPROVAL_RESUME:
            return .store(try persistApprovalResume(required(r.persist_approval_resume, "persist_approval_resume")))
        case STEPRUN__V1__REQUEST__CALL_RECORD_FAILURE_RECOVERY:
            return .store(try recordFailureRecovery(required(r.record_failure_recovery, "record_failure_recovery")))
        case STEPRUN__V1__REQUEST__CALL_UPDATE_RECOVERY: return .store(try updateRecovery(required(r.update_recovery, "update_recovery")))
        case STEPRUN__V1__REQUEST__CALL_GET_STEP_RUN:
            let body = try required(r.get_step_run, "get_step_run").pointee
            return .store(.getStepRun(runID: try uuid(body.run_id, "run_id"), step: try text(body.step, "step")))
        case STEPRUN__V1__REQUEST__CALL_COMPLETED_STEPS:
            let body = try required(r.completed_steps, "completed_steps").pointee
            let runID = try uuid(body.run_id, "run_id")
            return .store(.completedSteps(runID: runID, page: try page(body, list: .completedSteps, scope: runID)))
        case STEPRUN__V1__REQUEST__CALL_COMPLETED_OUTPUTS:
            let body = try required(r.completed_outputs, "completed_outputs").pointee
            let runID = try uuid(body.run_id, "run_id")
            return .store(.completedOutputs(runID: runID, page: try page(body, list: .completedOutputs, scope: runID)))
        case STEPRUN__V1__REQUEST__CALL_COMPLETED_STEP_RUNS_FOR_COMPENSATION:
            let body = try required(r.completed_step_runs_for_compensation, "completed_step_runs_for_compensation").pointee
            let runID = try uuid(body.run_id, "run_id")
            return .store(.completedStepRunsForCompensation(runID: runID, page: try page(body, list: .compensation, scope: runID)))
        case STEPRUN__V1__REQUEST__CALL_STEP_STATUSES:
            let body = try required(r.step_statuses, "step_statuses").pointee
            let runID = try uuid(body.run_id, "run_id")
            return .store(.stepStatuses(runID: runID, page: try page(body, list: .stepStatuses, scope: runID)))
        case STEPRUN__V1__REQUEST__CALL_BEGIN_ATTEMPT:
            return .store(.beginAttempt(stepRunID: try uuid(required(r.begin_attempt, "begin_attempt").pointee.step_run_id, "step_run_id")))
        case STEPRUN__V1__REQUEST__CALL_COMPLETE_ATTEMPT:
            return .store(.completeAttempt(attemptID: try uuid(required(r.complete_attempt, "complete_attempt").pointee.attempt_id, "attempt_id")))
        case STEPRUN__V1__REQUEST__CALL_FAIL_ATTEMPT: return .store(try failAttempt(required(r.fail_attempt, "fail_attempt")))
        case STEPRUN__V1__REQUEST__CALL_RECORD_ATTEMPT: return .store(try recordAttempt(required(r.record_attempt, "record_attempt")))
        case STEPRUN__V1__REQUEST__CALL_ATTEMPT_COUNT:
            return .store(.attemptCount(stepRunID: try uuid(required(r.attempt_count, "attempt_count").pointee.step_run_id, "step_run_id")))
        case STEPRUN__V1__REQUEST__CALL_LATEST_ATTEMPT:
            return .store(.latestAttempt(stepRunID: try uuid(required(r.latest_attempt, "latest_attempt").pointee.step_run_id, "step_run_id")))
        case STEPRUN__V1__REQUEST__CALL_LIST_ATTEMPTS:
            let body = try required(r.list_attempts, "list_attempts").pointee
            let stepRunID = try uuid(body.step_run_id, "step_run_id")
            return .store(.listAttempts(stepRunID: stepRunID, page: try page(body, list: .attempts, scope: stepRunID)))
        case STEPRUN__V1__REQUEST__CALL_PURGE_RUN:
            return .store(.purgeRun(runID: try uuid(required(r.purge_run, "purge_run").pointee.run_id, "run_id")))
        case STEPRUN__V1__REQUEST__CALL_TRANSACTION:
            return .store(try transaction(required(r.transaction, "transaction")))
        default:
            if let field = firstUnknownField(r.base, atLeast: firstCallField) {
                throw .unimplemented("unknown call (Request field \(field)); this server speaks protocol version \(WireProtocol.version)")
            }
            throw invalid("call", "is required: the request names no call")
        }
    }

    private func transaction(_ message: UnsafeMutablePointer<Steprun__V1__TransactionRequest>) throws(StepRunError) -> StoreRequest {
        let body = message.pointee
        var operations: [StoreRequest] = []
        operations.reserveCapacity(body.n_operations)
        for index in 0..<body.n_operations {
            let reader = element("operations", index)
            do {
                operations.append(try reader.transactionOperation(reader.present(body.operations[index])))
            } catch {
                throw .transactionFailed(index: index, cause: error)
            }
        }
        return .transaction(operations)
    }

    private func transactionOperation(_ message: UnsafeMutablePointer<Steprun__V1__TransactionOperation>) throws(StepRunError) -> StoreRequest {
        let o = message.pointee
        switch o.operation_case {
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_BEGIN_STEP: return try beginStep(required(o.begin_step, "begin_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_SCHEDULE_STEP: return try scheduleStep(required(o.schedule_step, "schedule_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_SCHEDULE_STEPS: return try scheduleSteps(required(o.schedule_steps, "schedule_steps"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_DELETE_PENDING_STEPS:
            return try deletePendingSteps(required(o.delete_pending_steps, "delete_pending_steps"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_STEP: return try completeStep(required(o.complete_step, "complete_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_MANUAL_STEP:
            return try completeManualStep(required(o.complete_manual_step, "complete_manual_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_FAIL_STEP: return try failStep(required(o.fail_step, "fail_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_PERSIST_PAUSE_RESUME:
            return try persistPauseResume(required(o.persist_pause_resume, "persist_pause_resume"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_PERSIST_APPROVAL_RESUME:
            return try persistApprovalResume(required(o.persist_approval_resume, "persist_approval_resume"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_RECORD_FAILURE_RECOVERY:
            return try recordFailureRecovery(required(o.record_failure_recovery, "record_failure_recovery"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_UPDATE_RECOVERY: return try updateRecovery(required(o.update_recovery, "update_recovery"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_BEGIN_ATTEMPT:
            return .beginAttempt(stepRunID: try uuid(required(o.begin_attempt, "begin_attempt").pointee.step_run_id, "step_run_id"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_ATTEMPT:
            return .completeAttempt(attemptID: try uuid(required(o.complete_attempt, "complete_attempt").pointee.attempt_id, "attempt_id"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_FAIL_ATTEMPT: return try failAttempt(required(o.fail_attempt, "fail_attempt"))
        case STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_RECORD_ATTEMPT: return try recordAttempt(required(o.record_attempt, "record_attempt"))
        default:
            if let field = firstUnknownField(o.base, atLeast: firstCallField) {
                // The operations share Request.call's field numbers, so a read (or purge_run, health, …)
                // put here by hand arrives under its own number: name it, rather than call it unknown.
                if let call = requestCallName(field) {
                    throw .invalidArgument(
                        field: String(prefix.dropLast()),
                        message: "\(prefix.dropLast()) is \(call) (field \(field)), which is not a write operation; only write operations can run inside a transaction")
                }
                throw .unimplemented("unknown transaction operation (TransactionOperation field \(field)) in \(prefix.dropLast())")
            }
            throw .invalidArgument(
                field: String(prefix.dropLast()),
                message: "\(prefix.dropLast()) names no write operation; only write operations can run inside a transaction")
        }
    }

    // MARK: One reader per request message

    private func beginStep(_ message: UnsafeMutablePointer<Steprun__V1__BeginStepRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .beginStep(
            runID: try uuid(b.run_id, "run_id"), step: try text(b.step, "step"), input: try jsonOrEmpty(b.input, "input"),
            recovery: try optionalJSON(b._recovery_case == STEPRUN__V1__BEGIN_STEP_REQUEST___RECOVERY_RECOVERY, b.recovery, "recovery"))
    }

    private func scheduleStep(_ message: UnsafeMutablePointer<Steprun__V1__ScheduleStepRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .scheduleStep(
            runID: try uuid(b.run_id, "run_id"), step: try text(b.step, "step"), input: try jsonOrEmpty(b.input, "input"),
            recovery: try optionalJSON(b._recovery_case == STEPRUN__V1__SCHEDULE_STEP_REQUEST___RECOVERY_RECOVERY, b.recovery, "recovery"))
    }

    private func scheduleSteps(_ message: UnsafeMutablePointer<Steprun__V1__ScheduleStepsRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        let runID = try uuid(b.run_id, "run_id")
        var steps: [ScheduledStep] = []
        steps.reserveCapacity(b.n_steps)
        for index in 0..<b.n_steps {
            let reader = element("steps", index)
            let entry = try reader.present(b.steps[index]).pointee
            steps.append(ScheduledStep(
                step: try reader.text(entry.step, "step"),
                input: try reader.jsonOrEmpty(entry.input, "input"),
                recovery: try reader.optionalJSON(
                    entry._recovery_case == STEPRUN__V1__STEP_TO_SCHEDULE___RECOVERY_RECOVERY, entry.recovery, "recovery")))
        }
        return .scheduleSteps(runID: runID, steps: steps)
    }

    private func deletePendingSteps(_ message: UnsafeMutablePointer<Steprun__V1__DeletePendingStepsRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .deletePendingSteps(runID: try uuid(b.run_id, "run_id"), steps: try texts(b.steps, count: b.n_steps, "steps"))
    }

    private func completeStep(_ message: UnsafeMutablePointer<Steprun__V1__CompleteStepRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .completeStep(stepRunID: try uuid(b.step_run_id, "step_run_id"), output: try json(b.output, "output"))
    }

    private func completeManualStep(_ message: UnsafeMutablePointer<Steprun__V1__CompleteManualStepRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .completeManualStep(
            stepRunID: try uuid(b.step_run_id, "step_run_id"), output: try json(b.output, "output"), manual: try json(b.manual, "manual"))
    }

    private func failStep(_ message: UnsafeMutablePointer<Steprun__V1__FailStepRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .failStep(stepRunID: try uuid(b.step_run_id, "step_run_id"), error: try json(b.error, "error"))
    }

    private func resumeTarget(_ message: UnsafeMutablePointer<Steprun__V1__ResumeTarget>?, _ field: String) throws(StepRunError) -> ResumeTarget {
        let target = try required(message, field).pointee
        switch target.target_case {
        // Every fault of a target is reported under the target's own field (`target`, `ok_target`,
        // `error_target`), as `StoreRequest.validate` reports a name that breaks the step-name rules.
        case STEPRUN__V1__RESUME_TARGET__TARGET_STEP: return .step(try text(target.step, field))
        case STEPRUN__V1__RESUME_TARGET__TARGET_COMPLETE_RUN: return .complete
        default: throw invalid(field, "must set step or complete_run")
        }
    }

    private func persistPauseResume(_ message: UnsafeMutablePointer<Steprun__V1__PersistPauseResumeRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .persistPauseResume(
            stepRunID: try uuid(b.step_run_id, "step_run_id"), output: try json(b.output, "output"),
            target: try resumeTarget(b.target, "target"))
    }

    private func persistApprovalResume(
        _ message: UnsafeMutablePointer<Steprun__V1__PersistApprovalResumeRequest>
    ) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        let hasKey = b._output_key_case == STEPRUN__V1__PERSIST_APPROVAL_RESUME_REQUEST___OUTPUT_KEY_OUTPUT_KEY
        return .persistApprovalResume(
            stepRunID: try uuid(b.step_run_id, "step_run_id"),
            okTarget: try resumeTarget(b.ok_target, "ok_target"),
            errorTarget: try resumeTarget(b.error_target, "error_target"),
            outputKey: hasKey ? try text(b.output_key, "output_key") : nil)
    }

    private func recordFailureRecovery(
        _ message: UnsafeMutablePointer<Steprun__V1__RecordFailureRecoveryRequest>
    ) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .recordFailureRecovery(
            stepRunID: try uuid(b.step_run_id, "step_run_id"),
            strategy: try known(RecoveryStrategy(wire: b.strategy), raw: b.strategy.rawValue, "strategy", "recovery strategy"),
            target: try text(b.target, "target"))
    }

    private func updateRecovery(_ message: UnsafeMutablePointer<Steprun__V1__UpdateRecoveryRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .updateRecovery(stepRunID: try uuid(b.step_run_id, "step_run_id"), recovery: try json(b.recovery, "recovery"))
    }

    private func failAttempt(_ message: UnsafeMutablePointer<Steprun__V1__FailAttemptRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .failAttempt(attemptID: try uuid(b.attempt_id, "attempt_id"), error: try json(b.error, "error"))
    }

    private func recordAttempt(_ message: UnsafeMutablePointer<Steprun__V1__RecordAttemptRequest>) throws(StepRunError) -> StoreRequest {
        let b = message.pointee
        return .recordAttempt(
            stepRunID: try uuid(b.step_run_id, "step_run_id"),
            attemptNumber: try attemptNumber(b.attempt_number, "attempt_number"),
            status: try attemptStatus(b.status, "status"),
            error: try optionalJSON(b._error_case == STEPRUN__V1__RECORD_ATTEMPT_REQUEST___ERROR_ERROR, b.error, "error"))
    }
}

/// The name of `Request.call` member number `field`, if this server knows one.
private func requestCallName(_ field: UInt32) -> String? {
    withUnsafePointer(to: steprun__v1__request__descriptor) { descriptor in
        protobuf_c_message_descriptor_get_field(descriptor, field).map { String(cString: $0.pointee.name) }
    }
}
