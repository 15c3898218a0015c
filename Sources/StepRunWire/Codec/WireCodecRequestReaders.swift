import CStepRunProto
import StepRunCore

// C `Request` → Call, and one reader per request message: every field checked (UUID lengths, UTF-8,
// JSON objects, known enums, required submessages). Size limits and step-name rules are left to
// `StoreRequest.validate(limits:)`.

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
        default:
            if let operation = StoreOperation(fieldNumber: UInt32(r.call_case.rawValue)) {
                return .store(try storeRequest(operation, in: request))
            }
            if let field = firstUnknownField(r.base, atLeast: firstCallField) {
                throw .unimplemented("unknown call (Request field \(field)); this server speaks protocol version \(WireProtocol.version)")
            }
            throw invalid("call", "is required: the request names no call")
        }
    }

    private func transactionOperation(_ message: UnsafeMutablePointer<Steprun__V1__TransactionOperation>) throws(StepRunError) -> StoreRequest {
        let o = message.pointee
        // protobuf-c sets the case only to a member TransactionOperation has: a transactional write.
        if let operation = StoreOperation(fieldNumber: UInt32(o.operation_case.rawValue)), operation.isTransactional {
            return try storeRequest(operation, in: message)
        }
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

    /// Reads `operation`'s request message from the oneof of `carrier` (a `Request` or a
    /// `TransactionOperation`, which share field numbers): the one decoder entry per operation.
    private func storeRequest<Carrier>(
        _ operation: StoreOperation, in carrier: UnsafeMutablePointer<Carrier>
    ) throws(StepRunError) -> StoreRequest {
        let member = OneofMember.get(carrier, number: operation.fieldNumber)
        /// The member as the message type of `operation`'s field; it is required.
        func body<Message>(_: Message.Type) throws(StepRunError) -> UnsafeMutablePointer<Message> {
            try required(member?.assumingMemoryBound(to: Message.self), operation.name)
        }
        switch operation {
        case .beginStep: return try beginStep(body(Steprun__V1__BeginStepRequest.self))
        case .scheduleStep: return try scheduleStep(body(Steprun__V1__ScheduleStepRequest.self))
        case .scheduleSteps: return try scheduleSteps(body(Steprun__V1__ScheduleStepsRequest.self))
        case .deletePendingSteps: return try deletePendingSteps(body(Steprun__V1__DeletePendingStepsRequest.self))
        case .completeStep: return try completeStep(body(Steprun__V1__CompleteStepRequest.self))
        case .completeManualStep: return try completeManualStep(body(Steprun__V1__CompleteManualStepRequest.self))
        case .failStep: return try failStep(body(Steprun__V1__FailStepRequest.self))
        case .persistPauseResume: return try persistPauseResume(body(Steprun__V1__PersistPauseResumeRequest.self))
        case .persistApprovalResume: return try persistApprovalResume(body(Steprun__V1__PersistApprovalResumeRequest.self))
        case .recordFailureRecovery: return try recordFailureRecovery(body(Steprun__V1__RecordFailureRecoveryRequest.self))
        case .updateRecovery: return try updateRecovery(body(Steprun__V1__UpdateRecoveryRequest.self))
        case .getStepRun:
            let b = try body(Steprun__V1__GetStepRunRequest.self).pointee
            return .getStepRun(runID: try uuid(b.run_id, "run_id"), step: try text(b.step, "step"))
        case .completedSteps:
            let b = try body(Steprun__V1__CompletedStepsRequest.self).pointee
            let runID = try uuid(b.run_id, "run_id")
            return .completedSteps(runID: runID, page: try page(b, list: .completedSteps, scope: runID))
        case .completedOutputs:
            let b = try body(Steprun__V1__CompletedOutputsRequest.self).pointee
            let runID = try uuid(b.run_id, "run_id")
            return .completedOutputs(runID: runID, page: try page(b, list: .completedOutputs, scope: runID))
        case .completedStepRunsForCompensation:
            let b = try body(Steprun__V1__CompletedStepRunsForCompensationRequest.self).pointee
            let runID = try uuid(b.run_id, "run_id")
            return .completedStepRunsForCompensation(runID: runID, page: try page(b, list: .compensation, scope: runID))
        case .stepStatuses:
            let b = try body(Steprun__V1__StepStatusesRequest.self).pointee
            let runID = try uuid(b.run_id, "run_id")
            return .stepStatuses(runID: runID, page: try page(b, list: .stepStatuses, scope: runID))
        case .beginAttempt:
            return .beginAttempt(stepRunID: try uuid(body(Steprun__V1__BeginAttemptRequest.self).pointee.step_run_id, "step_run_id"))
        case .completeAttempt:
            return .completeAttempt(attemptID: try uuid(body(Steprun__V1__CompleteAttemptRequest.self).pointee.attempt_id, "attempt_id"))
        case .failAttempt: return try failAttempt(body(Steprun__V1__FailAttemptRequest.self))
        case .recordAttempt: return try recordAttempt(body(Steprun__V1__RecordAttemptRequest.self))
        case .attemptCount:
            return .attemptCount(stepRunID: try uuid(body(Steprun__V1__AttemptCountRequest.self).pointee.step_run_id, "step_run_id"))
        case .latestAttempt:
            return .latestAttempt(stepRunID: try uuid(body(Steprun__V1__LatestAttemptRequest.self).pointee.step_run_id, "step_run_id"))
        case .listAttempts:
            let b = try body(Steprun__V1__ListAttemptsRequest.self).pointee
            let stepRunID = try uuid(b.step_run_id, "step_run_id")
            return .listAttempts(stepRunID: stepRunID, page: try page(b, list: .attempts, scope: stepRunID))
        case .purgeRun: return .purgeRun(runID: try uuid(body(Steprun__V1__PurgeRunRequest.self).pointee.run_id, "run_id"))
        case .transaction: return try transaction(body(Steprun__V1__TransactionRequest.self))
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
