import CStepRunProto
import StepRunCore

// RequestFrame → C `Request`: the envelope, and the one switch from a store request to its message.

extension EncodeArena {
    func request(_ frame: RequestFrame) -> UnsafeMutablePointer<Steprun__V1__Request> {
        let message = self.message(steprun__v1__request__init)
        message.pointee.id = frame.id
        message.pointee.timeout_ms = frame.timeoutMs
        switch frame.call {
        case .hello(let hello):
            let body = self.message(steprun__v1__hello__init)
            body.pointee.protocol_version = hello.protocolVersion
            body.pointee.client_name = cString(hello.clientName)
            body.pointee.token = cString(hello.token ?? "")
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_HELLO
            message.pointee.hello = body
        case .health:
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_HEALTH
            message.pointee.health = self.message(steprun__v1__health_request__init)
        case .store(let request):
            let placed = OneofMember.set(message, number: request.operation.fieldNumber, to: operationMessage(request))
            assert(placed, "Request.call has no member \(request.operation.fieldNumber) (\(request.operationName))")
        }
        return message
    }

    /// One operation of a transaction. Operations that cannot run in a transaction (reads, purge_run,
    /// nested transactions) have no member in the oneof; they are sent with none set, and the server
    /// refuses the transaction naming that operation's index. `StoreRequest.validate(limits:)` catches
    /// them before sending, with a clearer message.
    private func transactionOperation(_ request: StoreRequest) -> UnsafeMutablePointer<Steprun__V1__TransactionOperation> {
        let message = self.message(steprun__v1__transaction_operation__init)
        if request.isTransactional {
            _ = OneofMember.set(message, number: request.operation.fieldNumber, to: operationMessage(request))
        }
        return message
    }

    /// The request message of `request`'s operation, for `Request.call` or `TransactionOperation`
    /// under the operation's field number: the one encoder entry per operation.
    private func operationMessage(_ request: StoreRequest) -> UnsafeMutableRawPointer {
        switch request {
        case let .beginStep(runID, step, input, recovery): UnsafeMutableRawPointer(beginStep(runID, step, input, recovery))
        case let .scheduleStep(runID, step, input, recovery): UnsafeMutableRawPointer(scheduleStep(runID, step, input, recovery))
        case let .scheduleSteps(runID, steps): UnsafeMutableRawPointer(scheduleSteps(runID, steps))
        case let .deletePendingSteps(runID, steps): UnsafeMutableRawPointer(deletePendingSteps(runID, steps))
        case let .completeStep(id, output): UnsafeMutableRawPointer(completeStep(id, output))
        case let .completeManualStep(id, output, manual): UnsafeMutableRawPointer(completeManualStep(id, output, manual))
        case let .failStep(id, error): UnsafeMutableRawPointer(failStep(id, error))
        case let .persistPauseResume(id, output, target): UnsafeMutableRawPointer(persistPauseResume(id, output, target))
        case let .persistApprovalResume(id, okTarget, errorTarget, outputKey):
            UnsafeMutableRawPointer(persistApprovalResume(id, okTarget, errorTarget, outputKey))
        case let .recordFailureRecovery(id, strategy, target): UnsafeMutableRawPointer(recordFailureRecovery(id, strategy, target))
        case let .updateRecovery(id, recovery): UnsafeMutableRawPointer(updateRecovery(id, recovery))
        case let .getStepRun(runID, step): UnsafeMutableRawPointer(getStepRun(runID, step))
        case let .completedSteps(runID, page):
            UnsafeMutableRawPointer(listRequest(runID, page, steprun__v1__completed_steps_request__init, \.run_id))
        case let .completedOutputs(runID, page):
            UnsafeMutableRawPointer(listRequest(runID, page, steprun__v1__completed_outputs_request__init, \.run_id))
        case let .completedStepRunsForCompensation(runID, page):
            UnsafeMutableRawPointer(listRequest(runID, page, steprun__v1__completed_step_runs_for_compensation_request__init, \.run_id))
        case let .stepStatuses(runID, page):
            UnsafeMutableRawPointer(listRequest(runID, page, steprun__v1__step_statuses_request__init, \.run_id))
        case let .beginAttempt(id): UnsafeMutableRawPointer(runOnly(id, steprun__v1__begin_attempt_request__init, \.step_run_id))
        case let .completeAttempt(id): UnsafeMutableRawPointer(runOnly(id, steprun__v1__complete_attempt_request__init, \.attempt_id))
        case let .failAttempt(id, error): UnsafeMutableRawPointer(failAttempt(id, error))
        case let .recordAttempt(id, number, status, error): UnsafeMutableRawPointer(recordAttempt(id, number, status, error))
        case let .attemptCount(id): UnsafeMutableRawPointer(runOnly(id, steprun__v1__attempt_count_request__init, \.step_run_id))
        case let .latestAttempt(id): UnsafeMutableRawPointer(runOnly(id, steprun__v1__latest_attempt_request__init, \.step_run_id))
        case let .listAttempts(id, page):
            UnsafeMutableRawPointer(listRequest(id, page, steprun__v1__list_attempts_request__init, \.step_run_id))
        case let .purgeRun(runID): UnsafeMutableRawPointer(runOnly(runID, steprun__v1__purge_run_request__init, \.run_id))
        case let .transaction(operations):
            UnsafeMutableRawPointer(transaction(operations))
        }
    }

    private func transaction(_ operations: [StoreRequest]) -> UnsafeMutablePointer<Steprun__V1__TransactionRequest> {
        let body = self.message(steprun__v1__transaction_request__init)
        body.pointee.n_operations = operations.count
        body.pointee.operations = list(operations, of: Steprun__V1__TransactionOperation.self, transactionOperation)
        return body
    }
}
