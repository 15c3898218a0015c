import CStepRunProto
import StepRunCore

// Reply → C `Response.result`: one oneof member per result shape.

extension EncodeArena {
    /// Sets the result member of `message`; false when the reply cannot be expressed on the wire
    /// (a transaction result holding a result no write operation returns).
    func setResult(of message: UnsafeMutablePointer<Steprun__V1__Response>, to reply: Reply) -> Bool {
        switch reply {
        case .hello(let hello):
            let body = self.message(steprun__v1__hello_reply__init)
            body.pointee.protocol_version = hello.protocolVersion
            body.pointee.server_name = cString(hello.serverName)
            body.pointee.max_frame_bytes = hello.maxFrameBytes
            body.pointee.max_payload_bytes = hello.maxPayloadBytes
            body.pointee.max_in_flight = hello.maxInFlight
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_HELLO
            message.pointee.hello = body
        case .health(let health):
            let body = self.message(steprun__v1__health_reply__init)
            body.pointee.serving = health.serving ? 1 : 0
            body.pointee.database_latency_micros = health.databaseLatencyMicros
            body.pointee.message = cString(health.message)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_HEALTH
            message.pointee.health = body
        case .store(let result):
            return setStoreResult(of: message, to: result)
        }
        return true
    }

    private func setStoreResult(of message: UnsafeMutablePointer<Steprun__V1__Response>, to result: StoreResult) -> Bool {
        switch result {
        case let .begin(stepRun, decision):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_BEGIN_STEP
            message.pointee.begin_step = beginStepResult(stepRun, decision)
        case let .schedule(stepRun, decision):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEP
            message.pointee.schedule_step = scheduleStepResult(stepRun, decision)
        case .scheduledSteps(let names):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEPS
            message.pointee.schedule_steps = scheduleStepsResult(names)
        case .deletedCount(let count):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_DELETE_PENDING_STEPS
            message.pointee.delete_pending_steps = deletePendingStepsResult(count)
        case .stepRun(let stepRun):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_STEP_RUN
            message.pointee.step_run = stepRunResult(stepRun)
        case .foundStepRun(let stepRun):
            let body = self.message(steprun__v1__get_step_run_result__init)
            body.pointee.step_run = stepRun.map(self.stepRun)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_GET_STEP_RUN
            message.pointee.get_step_run = body
        case .steps(let names, let next):
            let body = self.message(steprun__v1__completed_steps_result__init)
            body.pointee.n_steps = names.count
            body.pointee.steps = texts(names)
            setNext(next, on: body)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEPS
            message.pointee.completed_steps = body
        case .outputs(let outputs, let next):
            let body = self.message(steprun__v1__completed_outputs_result__init)
            let values = binaries(count: outputs.count)
            for (index, output) in outputs.enumerated() {
                values[index] = binary(output.utf8)
            }
            body.pointee.n_outputs = outputs.count
            body.pointee.outputs = values
            setNext(next, on: body)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_COMPLETED_OUTPUTS
            message.pointee.completed_outputs = body
        case .stepRuns(let stepRuns, let next):
            let body = self.message(steprun__v1__completed_step_runs_for_compensation_result__init)
            let list = pointers(to: Steprun__V1__StepRun.self, count: stepRuns.count)
            for (index, stepRun) in stepRuns.enumerated() {
                list[index] = self.stepRun(stepRun)
            }
            body.pointee.n_step_runs = stepRuns.count
            body.pointee.step_runs = list
            setNext(next, on: body)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEP_RUNS_FOR_COMPENSATION
            message.pointee.completed_step_runs_for_compensation = body
        case .statuses(let statuses, let next):
            // In byte order (the names' UTF-8 bytes, code point order, not String's Unicode-aware
            // `<`): the documented order and the order of the pages (docs/PROTOCOL.md §6), so the
            // same statuses always encode to the same bytes.
            let sorted = statuses.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            let body = self.message(steprun__v1__step_statuses_result__init)
            let list = pointers(to: Steprun__V1__StepStatusEntry.self, count: sorted.count)
            for (index, (step, status)) in sorted.enumerated() {
                let entry = self.message(steprun__v1__step_status_entry__init)
                entry.pointee.step = binary(step)
                entry.pointee.status = status.wire
                list[index] = entry
            }
            body.pointee.n_statuses = sorted.count
            body.pointee.statuses = list
            setNext(next, on: body)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_STEP_STATUSES
            message.pointee.step_statuses = body
        case .attempt(let attempt):
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_ATTEMPT
            message.pointee.attempt = attemptResult(attempt)
        case .attemptCount(let count):
            let body = self.message(steprun__v1__attempt_count_result__init)
            body.pointee.count = Int64(count)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_ATTEMPT_COUNT
            message.pointee.attempt_count = body
        case .latestAttempt(let attempt):
            let body = self.message(steprun__v1__latest_attempt_result__init)
            body.pointee.attempt = attempt.map(stepAttempt)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_LATEST_ATTEMPT
            message.pointee.latest_attempt = body
        case .attempts(let attempts, let next):
            let body = self.message(steprun__v1__list_attempts_result__init)
            let list = pointers(to: Steprun__V1__StepAttempt.self, count: attempts.count)
            for (index, attempt) in attempts.enumerated() {
                list[index] = stepAttempt(attempt)
            }
            body.pointee.n_attempts = attempts.count
            body.pointee.attempts = list
            setNext(next, on: body)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_LIST_ATTEMPTS
            message.pointee.list_attempts = body
        case .purged(let counts):
            let body = self.message(steprun__v1__purge_run_result__init)
            body.pointee.step_runs = Int64(counts.stepRuns)
            body.pointee.attempts = Int64(counts.attempts)
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_PURGE_RUN
            message.pointee.purge_run = body
        case .transaction(let results):
            let body = self.message(steprun__v1__transaction_result__init)
            let list = pointers(to: Steprun__V1__TransactionOperationResult.self, count: results.count)
            for (index, result) in results.enumerated() {
                guard let entry = transactionOperationResult(result) else { return false }
                list[index] = entry
            }
            body.pointee.n_results = results.count
            body.pointee.results = list
            message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT_TRANSACTION
            message.pointee.transaction = body
        }
        return true
    }

    /// nil for shapes no write operation returns.
    private func transactionOperationResult(
        _ result: StoreResult
    ) -> UnsafeMutablePointer<Steprun__V1__TransactionOperationResult>? {
        let message = self.message(steprun__v1__transaction_operation_result__init)
        switch result {
        case let .begin(stepRun, decision):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_BEGIN_STEP
            message.pointee.begin_step = beginStepResult(stepRun, decision)
        case let .schedule(stepRun, decision):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_SCHEDULE_STEP
            message.pointee.schedule_step = scheduleStepResult(stepRun, decision)
        case .scheduledSteps(let names):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_SCHEDULE_STEPS
            message.pointee.schedule_steps = scheduleStepsResult(names)
        case .deletedCount(let count):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_DELETE_PENDING_STEPS
            message.pointee.delete_pending_steps = deletePendingStepsResult(count)
        case .stepRun(let stepRun):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_STEP_RUN
            message.pointee.step_run = stepRunResult(stepRun)
        case .attempt(let attempt):
            message.pointee.result_case = STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_ATTEMPT
            message.pointee.attempt = attemptResult(attempt)
        case .foundStepRun, .steps, .outputs, .stepRuns, .statuses, .attemptCount, .latestAttempt, .attempts,
            .purged, .transaction:
            return nil
        }
        return message
    }

    // MARK: Shapes shared by Response and TransactionOperationResult

    private func beginStepResult(_ stepRun: StepRun, _ decision: BeginDecision) -> UnsafeMutablePointer<Steprun__V1__BeginStepResult> {
        let body = message(steprun__v1__begin_step_result__init)
        body.pointee.step_run = self.stepRun(stepRun)
        body.pointee.decision = decision.wire
        return body
    }

    private func scheduleStepResult(
        _ stepRun: StepRun, _ decision: ScheduleDecision
    ) -> UnsafeMutablePointer<Steprun__V1__ScheduleStepResult> {
        let body = message(steprun__v1__schedule_step_result__init)
        body.pointee.step_run = self.stepRun(stepRun)
        body.pointee.decision = decision.wire
        return body
    }

    private func scheduleStepsResult(_ names: [String]) -> UnsafeMutablePointer<Steprun__V1__ScheduleStepsResult> {
        let body = message(steprun__v1__schedule_steps_result__init)
        body.pointee.n_scheduled_steps = names.count
        body.pointee.scheduled_steps = texts(names)
        return body
    }

    private func deletePendingStepsResult(_ count: Int) -> UnsafeMutablePointer<Steprun__V1__DeletePendingStepsResult> {
        let body = message(steprun__v1__delete_pending_steps_result__init)
        body.pointee.deleted_count = Int64(count)
        return body
    }

    private func stepRunResult(_ stepRun: StepRun) -> UnsafeMutablePointer<Steprun__V1__StepRunResult> {
        let body = message(steprun__v1__step_run_result__init)
        body.pointee.step_run = self.stepRun(stepRun)
        return body
    }

    private func attemptResult(_ attempt: StepAttempt) -> UnsafeMutablePointer<Steprun__V1__AttemptResult> {
        let body = message(steprun__v1__attempt_result__init)
        body.pointee.attempt = stepAttempt(attempt)
        return body
    }
}
