import CStepRunProto
import StepRunCore

// RequestFrame → C `Request`: the envelope, and the choice of oneof member for every call.

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
            setCall(of: message, to: request)
        }
        return message
    }

    private func setCall(of message: UnsafeMutablePointer<Steprun__V1__Request>, to request: StoreRequest) {
        switch request {
        case let .beginStep(runID, step, input, recovery):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_BEGIN_STEP
            message.pointee.begin_step = beginStep(runID, step, input, recovery)
        case let .scheduleStep(runID, step, input, recovery):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_SCHEDULE_STEP
            message.pointee.schedule_step = scheduleStep(runID, step, input, recovery)
        case let .scheduleSteps(runID, steps):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_SCHEDULE_STEPS
            message.pointee.schedule_steps = scheduleSteps(runID, steps)
        case let .deletePendingSteps(runID, steps):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_DELETE_PENDING_STEPS
            message.pointee.delete_pending_steps = deletePendingSteps(runID, steps)
        case let .completeStep(id, output):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETE_STEP
            message.pointee.complete_step = completeStep(id, output)
        case let .completeManualStep(id, output, manual):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETE_MANUAL_STEP
            message.pointee.complete_manual_step = completeManualStep(id, output, manual)
        case let .failStep(id, error):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_FAIL_STEP
            message.pointee.fail_step = failStep(id, error)
        case let .persistPauseResume(id, output, target):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_PERSIST_PAUSE_RESUME
            message.pointee.persist_pause_resume = persistPauseResume(id, output, target)
        case let .persistApprovalResume(id, okTarget, errorTarget, outputKey):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_PERSIST_APPROVAL_RESUME
            message.pointee.persist_approval_resume = persistApprovalResume(id, okTarget, errorTarget, outputKey)
        case let .recordFailureRecovery(id, strategy, target):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_RECORD_FAILURE_RECOVERY
            message.pointee.record_failure_recovery = recordFailureRecovery(id, strategy, target)
        case let .updateRecovery(id, recovery):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_UPDATE_RECOVERY
            message.pointee.update_recovery = updateRecovery(id, recovery)
        case let .getStepRun(runID, step):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_GET_STEP_RUN
            message.pointee.get_step_run = getStepRun(runID, step)
        case .completedSteps(let runID, let page):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETED_STEPS
            message.pointee.completed_steps = listRequest(runID, page, steprun__v1__completed_steps_request__init, \.run_id)
        case .completedOutputs(let runID, let page):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETED_OUTPUTS
            message.pointee.completed_outputs = listRequest(runID, page, steprun__v1__completed_outputs_request__init, \.run_id)
        case .completedStepRunsForCompensation(let runID, let page):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETED_STEP_RUNS_FOR_COMPENSATION
            message.pointee.completed_step_runs_for_compensation =
                listRequest(runID, page, steprun__v1__completed_step_runs_for_compensation_request__init, \.run_id)
        case .stepStatuses(let runID, let page):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_STEP_STATUSES
            message.pointee.step_statuses = listRequest(runID, page, steprun__v1__step_statuses_request__init, \.run_id)
        case .beginAttempt(let id):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_BEGIN_ATTEMPT
            message.pointee.begin_attempt = runOnly(id, steprun__v1__begin_attempt_request__init, \.step_run_id)
        case .completeAttempt(let id):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_COMPLETE_ATTEMPT
            message.pointee.complete_attempt = runOnly(id, steprun__v1__complete_attempt_request__init, \.attempt_id)
        case let .failAttempt(id, error):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_FAIL_ATTEMPT
            message.pointee.fail_attempt = failAttempt(id, error)
        case let .recordAttempt(id, number, status, error):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_RECORD_ATTEMPT
            message.pointee.record_attempt = recordAttempt(id, number, status, error)
        case .attemptCount(let id):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_ATTEMPT_COUNT
            message.pointee.attempt_count = runOnly(id, steprun__v1__attempt_count_request__init, \.step_run_id)
        case .latestAttempt(let id):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_LATEST_ATTEMPT
            message.pointee.latest_attempt = runOnly(id, steprun__v1__latest_attempt_request__init, \.step_run_id)
        case .listAttempts(let id, let page):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_LIST_ATTEMPTS
            message.pointee.list_attempts = listRequest(id, page, steprun__v1__list_attempts_request__init, \.step_run_id)
        case .purgeRun(let runID):
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_PURGE_RUN
            message.pointee.purge_run = runOnly(runID, steprun__v1__purge_run_request__init, \.run_id)
        case .transaction(let operations):
            let body = self.message(steprun__v1__transaction_request__init)
            let list = pointers(to: Steprun__V1__TransactionOperation.self, count: operations.count)
            for (index, operation) in operations.enumerated() {
                list[index] = transactionOperation(operation)
            }
            body.pointee.n_operations = operations.count
            body.pointee.operations = list
            message.pointee.call_case = STEPRUN__V1__REQUEST__CALL_TRANSACTION
            message.pointee.transaction = body
        }
    }

    /// One operation of a transaction. Operations that cannot run in a transaction (reads, purge_run,
    /// nested transactions) have no member in the oneof; they are sent with none set, and the server
    /// refuses the transaction naming that operation's index. `StoreRequest.validate(limits:)` catches
    /// them before sending, with a clearer message.
    private func transactionOperation(_ request: StoreRequest) -> UnsafeMutablePointer<Steprun__V1__TransactionOperation> {
        let message = self.message(steprun__v1__transaction_operation__init)
        switch request {
        case let .beginStep(runID, step, input, recovery):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_BEGIN_STEP
            message.pointee.begin_step = beginStep(runID, step, input, recovery)
        case let .scheduleStep(runID, step, input, recovery):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_SCHEDULE_STEP
            message.pointee.schedule_step = scheduleStep(runID, step, input, recovery)
        case let .scheduleSteps(runID, steps):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_SCHEDULE_STEPS
            message.pointee.schedule_steps = scheduleSteps(runID, steps)
        case let .deletePendingSteps(runID, steps):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_DELETE_PENDING_STEPS
            message.pointee.delete_pending_steps = deletePendingSteps(runID, steps)
        case let .completeStep(id, output):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_STEP
            message.pointee.complete_step = completeStep(id, output)
        case let .completeManualStep(id, output, manual):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_MANUAL_STEP
            message.pointee.complete_manual_step = completeManualStep(id, output, manual)
        case let .failStep(id, error):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_FAIL_STEP
            message.pointee.fail_step = failStep(id, error)
        case let .persistPauseResume(id, output, target):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_PERSIST_PAUSE_RESUME
            message.pointee.persist_pause_resume = persistPauseResume(id, output, target)
        case let .persistApprovalResume(id, okTarget, errorTarget, outputKey):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_PERSIST_APPROVAL_RESUME
            message.pointee.persist_approval_resume = persistApprovalResume(id, okTarget, errorTarget, outputKey)
        case let .recordFailureRecovery(id, strategy, target):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_RECORD_FAILURE_RECOVERY
            message.pointee.record_failure_recovery = recordFailureRecovery(id, strategy, target)
        case let .updateRecovery(id, recovery):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_UPDATE_RECOVERY
            message.pointee.update_recovery = updateRecovery(id, recovery)
        case .beginAttempt(let id):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_BEGIN_ATTEMPT
            message.pointee.begin_attempt = runOnly(id, steprun__v1__begin_attempt_request__init, \.step_run_id)
        case .completeAttempt(let id):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_COMPLETE_ATTEMPT
            message.pointee.complete_attempt = runOnly(id, steprun__v1__complete_attempt_request__init, \.attempt_id)
        case let .failAttempt(id, error):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_FAIL_ATTEMPT
            message.pointee.fail_attempt = failAttempt(id, error)
        case let .recordAttempt(id, number, status, error):
            message.pointee.operation_case = STEPRUN__V1__TRANSACTION_OPERATION__OPERATION_RECORD_ATTEMPT
            message.pointee.record_attempt = recordAttempt(id, number, status, error)
        case .getStepRun, .completedSteps, .completedOutputs, .completedStepRunsForCompensation, .stepStatuses,
            .attemptCount, .latestAttempt, .listAttempts, .purgeRun, .transaction:
            break
        }
        return message
    }
}
