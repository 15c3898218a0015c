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
        guard let (number, body) = storeResultMessage(result) else { return false }
        return OneofMember.set(message, number: number, to: body)
    }

    /// nil for shapes no write operation returns.
    private func transactionOperationResult(
        _ result: StoreResult
    ) -> UnsafeMutablePointer<Steprun__V1__TransactionOperationResult>? {
        let message = self.message(steprun__v1__transaction_operation_result__init)
        // TransactionOperationResult has the members of the write operations' shapes only, under
        // Response.result's numbers; any other shape is refused here.
        guard let (number, body) = storeResultMessage(result), OneofMember.set(message, number: number, to: body) else { return nil }
        return message
    }

    /// The result message of `result` and its member number in `Response.result` (shared by
    /// `TransactionOperationResult.result`): the one encoder entry per result shape. Nil when a
    /// transaction result holds a shape no write operation returns.
    private func storeResultMessage(_ result: StoreResult) -> (number: UInt32, body: UnsafeMutableRawPointer)? {
        switch result {
        case let .begin(stepRun, decision):
            return (STEPRUN__V1__RESPONSE__RESULT_BEGIN_STEP.rawValue, UnsafeMutableRawPointer(beginStepResult(stepRun, decision)))
        case let .schedule(stepRun, decision):
            return (STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEP.rawValue, UnsafeMutableRawPointer(scheduleStepResult(stepRun, decision)))
        case .scheduledSteps(let names):
            return (STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEPS.rawValue, UnsafeMutableRawPointer(scheduleStepsResult(names)))
        case .deletedCount(let count):
            return (STEPRUN__V1__RESPONSE__RESULT_DELETE_PENDING_STEPS.rawValue, UnsafeMutableRawPointer(deletePendingStepsResult(count)))
        case .stepRun(let stepRun):
            return (STEPRUN__V1__RESPONSE__RESULT_STEP_RUN.rawValue, UnsafeMutableRawPointer(stepRunResult(stepRun)))
        case .foundStepRun(let stepRun):
            let body = self.message(steprun__v1__get_step_run_result__init)
            body.pointee.step_run = stepRun.map(self.stepRun)
            return (STEPRUN__V1__RESPONSE__RESULT_GET_STEP_RUN.rawValue, UnsafeMutableRawPointer(body))
        case .steps(let names, let next):
            let body = self.message(steprun__v1__completed_steps_result__init)
            body.pointee.n_steps = names.count
            body.pointee.steps = texts(names)
            setNext(next, on: body)
            return (STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEPS.rawValue, UnsafeMutableRawPointer(body))
        case .outputs(let outputs, let next):
            let body = self.message(steprun__v1__completed_outputs_result__init)
            let values = binaries(count: outputs.count)
            for (index, output) in outputs.enumerated() {
                values[index] = binary(output.utf8)
            }
            body.pointee.n_outputs = outputs.count
            body.pointee.outputs = values
            setNext(next, on: body)
            return (STEPRUN__V1__RESPONSE__RESULT_COMPLETED_OUTPUTS.rawValue, UnsafeMutableRawPointer(body))
        case .stepRuns(let stepRuns, let next):
            let body = self.message(steprun__v1__completed_step_runs_for_compensation_result__init)
            body.pointee.n_step_runs = stepRuns.count
            body.pointee.step_runs = list(stepRuns, of: Steprun__V1__StepRun.self, stepRun)
            setNext(next, on: body)
            return (STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEP_RUNS_FOR_COMPENSATION.rawValue, UnsafeMutableRawPointer(body))
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
            return (STEPRUN__V1__RESPONSE__RESULT_STEP_STATUSES.rawValue, UnsafeMutableRawPointer(body))
        case .attempt(let attempt):
            return (STEPRUN__V1__RESPONSE__RESULT_ATTEMPT.rawValue, UnsafeMutableRawPointer(attemptResult(attempt)))
        case .attemptCount(let count):
            let body = self.message(steprun__v1__attempt_count_result__init)
            body.pointee.count = Int64(count)
            return (STEPRUN__V1__RESPONSE__RESULT_ATTEMPT_COUNT.rawValue, UnsafeMutableRawPointer(body))
        case .latestAttempt(let attempt):
            let body = self.message(steprun__v1__latest_attempt_result__init)
            body.pointee.attempt = attempt.map(stepAttempt)
            return (STEPRUN__V1__RESPONSE__RESULT_LATEST_ATTEMPT.rawValue, UnsafeMutableRawPointer(body))
        case .attempts(let attempts, let next):
            let body = self.message(steprun__v1__list_attempts_result__init)
            body.pointee.n_attempts = attempts.count
            body.pointee.attempts = list(attempts, of: Steprun__V1__StepAttempt.self, stepAttempt)
            setNext(next, on: body)
            return (STEPRUN__V1__RESPONSE__RESULT_LIST_ATTEMPTS.rawValue, UnsafeMutableRawPointer(body))
        case .purged(let counts):
            let body = self.message(steprun__v1__purge_run_result__init)
            body.pointee.step_runs = Int64(counts.stepRuns)
            body.pointee.attempts = Int64(counts.attempts)
            return (STEPRUN__V1__RESPONSE__RESULT_PURGE_RUN.rawValue, UnsafeMutableRawPointer(body))
        case .transaction(let results):
            let body = self.message(steprun__v1__transaction_result__init)
            let list = pointers(to: Steprun__V1__TransactionOperationResult.self, count: results.count)
            for (index, result) in results.enumerated() {
                guard let entry = transactionOperationResult(result) else { return nil }
                list[index] = entry
            }
            body.pointee.n_results = results.count
            body.pointee.results = list
            return (STEPRUN__V1__RESPONSE__RESULT_TRANSACTION.rawValue, UnsafeMutableRawPointer(body))
        }
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
