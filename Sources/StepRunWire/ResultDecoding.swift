import CStepRunProto
import StepRunCore

// C `Response.result` → Reply, with the same checks as requests: a client never hands its caller a
// StepRun with a 15-byte id or an output that is not a JSON object.

/// The first field number of `Response.result`; unknown fields at or above it are results from a
/// newer protocol version.
private let firstResultField: UInt32 = 10

extension FieldReader {
    func reply(_ response: UnsafeMutablePointer<Steprun__V1__Response>) throws(StepRunError) -> Reply {
        let r = response.pointee
        switch r.result_case {
        case STEPRUN__V1__RESPONSE__RESULT_HELLO:
            let hello = try required(r.hello, "hello").pointee
            return .hello(HelloReply(
                protocolVersion: hello.protocol_version,
                serverName: try string(hello.server_name, "hello.server_name"),
                maxFrameBytes: hello.max_frame_bytes,
                maxPayloadBytes: hello.max_payload_bytes,
                maxInFlight: hello.max_in_flight))
        case STEPRUN__V1__RESPONSE__RESULT_HEALTH:
            let health = try required(r.health, "health").pointee
            return .health(HealthReply(
                serving: health.serving != 0,
                databaseLatencyMicros: health.database_latency_micros,
                message: try string(health.message, "health.message")))
        case STEPRUN__V1__RESPONSE__RESULT_BEGIN_STEP: return .store(try beginStepResult(required(r.begin_step, "begin_step")))
        case STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEP: return .store(try scheduleStepResult(required(r.schedule_step, "schedule_step")))
        case STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEPS:
            return .store(try scheduleStepsResult(required(r.schedule_steps, "schedule_steps")))
        case STEPRUN__V1__RESPONSE__RESULT_DELETE_PENDING_STEPS:
            return .store(try deletePendingStepsResult(required(r.delete_pending_steps, "delete_pending_steps")))
        case STEPRUN__V1__RESPONSE__RESULT_STEP_RUN: return .store(try stepRunResult(required(r.step_run, "step_run")))
        case STEPRUN__V1__RESPONSE__RESULT_GET_STEP_RUN:
            let body = try required(r.get_step_run, "get_step_run").pointee
            return .store(.foundStepRun(try body.step_run.map { (stepRun) throws(StepRunError) in
                try nested("get_step_run.step_run").stepRun(stepRun)
            }))
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEPS:
            let body = try required(r.completed_steps, "completed_steps").pointee
            return .store(.steps(try texts(body.steps, count: body.n_steps, "completed_steps.steps"),
                                 next: try nextToken(body, "completed_steps.next_page_token")))
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_OUTPUTS:
            let body = try required(r.completed_outputs, "completed_outputs").pointee
            var outputs: [JSONPayload] = []
            outputs.reserveCapacity(body.n_outputs)
            for index in 0..<body.n_outputs {
                outputs.append(try jsonOrEmpty(body.outputs[index], "completed_outputs.outputs[\(index)]"))
            }
            return .store(.outputs(outputs, next: try nextToken(body, "completed_outputs.next_page_token")))
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEP_RUNS_FOR_COMPENSATION:
            let body = try required(r.completed_step_runs_for_compensation, "completed_step_runs_for_compensation").pointee
            var stepRuns: [StepRun] = []
            stepRuns.reserveCapacity(body.n_step_runs)
            for index in 0..<body.n_step_runs {
                let reader = element("completed_step_runs_for_compensation.step_runs", index)
                stepRuns.append(try reader.stepRun(reader.present(body.step_runs[index])))
            }
            return .store(.stepRuns(stepRuns, next: try nextToken(body, "completed_step_runs_for_compensation.next_page_token")))
        case STEPRUN__V1__RESPONSE__RESULT_STEP_STATUSES:
            let body = try required(r.step_statuses, "step_statuses").pointee
            var statuses: [String: StepStatus] = [:]
            statuses.reserveCapacity(body.n_statuses)
            for index in 0..<body.n_statuses {
                let reader = element("step_statuses.statuses", index)
                let entry = try reader.present(body.statuses[index]).pointee
                statuses[try reader.text(entry.step, "step")] = try reader.stepStatus(entry.status, "status")
            }
            return .store(.statuses(statuses, next: try nextToken(body, "step_statuses.next_page_token")))
        case STEPRUN__V1__RESPONSE__RESULT_ATTEMPT: return .store(try attemptResult(required(r.attempt, "attempt")))
        case STEPRUN__V1__RESPONSE__RESULT_ATTEMPT_COUNT:
            let body = try required(r.attempt_count, "attempt_count").pointee
            return .store(.attemptCount(try count(body.count, "attempt_count.count")))
        case STEPRUN__V1__RESPONSE__RESULT_LATEST_ATTEMPT:
            let body = try required(r.latest_attempt, "latest_attempt").pointee
            return .store(.latestAttempt(try body.attempt.map { (attempt) throws(StepRunError) in
                try nested("latest_attempt.attempt").stepAttempt(attempt)
            }))
        case STEPRUN__V1__RESPONSE__RESULT_LIST_ATTEMPTS:
            let body = try required(r.list_attempts, "list_attempts").pointee
            var attempts: [StepAttempt] = []
            attempts.reserveCapacity(body.n_attempts)
            for index in 0..<body.n_attempts {
                let reader = element("list_attempts.attempts", index)
                attempts.append(try reader.stepAttempt(reader.present(body.attempts[index])))
            }
            return .store(.attempts(attempts, next: try nextToken(body, "list_attempts.next_page_token")))
        case STEPRUN__V1__RESPONSE__RESULT_PURGE_RUN:
            let body = try required(r.purge_run, "purge_run").pointee
            return .store(.purged(PurgeCounts(
                stepRuns: try count(body.step_runs, "purge_run.step_runs"),
                attempts: try count(body.attempts, "purge_run.attempts"))))
        case STEPRUN__V1__RESPONSE__RESULT_TRANSACTION:
            let body = try required(r.transaction, "transaction").pointee
            var results: [StoreResult] = []
            results.reserveCapacity(body.n_results)
            for index in 0..<body.n_results {
                let reader = element("transaction.results", index)
                results.append(try reader.transactionOperationResult(reader.present(body.results[index])))
            }
            return .store(.transaction(results))
        default:
            if let field = firstUnknownField(r.base, atLeast: firstResultField) {
                throw .unimplemented("unknown result (Response field \(field)); this client speaks protocol version \(WireProtocol.version)")
            }
            throw invalid("result", "is required: a successful response carries a result")
        }
    }

    private func transactionOperationResult(
        _ message: UnsafeMutablePointer<Steprun__V1__TransactionOperationResult>
    ) throws(StepRunError) -> StoreResult {
        let r = message.pointee
        switch r.result_case {
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_BEGIN_STEP: return try beginStepResult(required(r.begin_step, "begin_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_SCHEDULE_STEP:
            return try scheduleStepResult(required(r.schedule_step, "schedule_step"))
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_SCHEDULE_STEPS:
            return try scheduleStepsResult(required(r.schedule_steps, "schedule_steps"))
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_DELETE_PENDING_STEPS:
            return try deletePendingStepsResult(required(r.delete_pending_steps, "delete_pending_steps"))
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_STEP_RUN: return try stepRunResult(required(r.step_run, "step_run"))
        case STEPRUN__V1__TRANSACTION_OPERATION_RESULT__RESULT_ATTEMPT: return try attemptResult(required(r.attempt, "attempt"))
        default:
            if let field = firstUnknownField(r.base, atLeast: firstResultField) {
                throw .unimplemented("unknown transaction result (TransactionOperationResult field \(field))")
            }
            throw .invalidArgument(field: String(prefix.dropLast()), message: "\(prefix.dropLast()) carries no result")
        }
    }

    // MARK: Shapes shared by Response and TransactionOperationResult

    private func beginStepResult(_ message: UnsafeMutablePointer<Steprun__V1__BeginStepResult>) throws(StepRunError) -> StoreResult {
        let body = message.pointee
        let stepRun = try nested("begin_step.step_run").stepRun(required(body.step_run, "begin_step.step_run"))
        let decision = try known(BeginDecision(wire: body.decision), raw: body.decision.rawValue, "begin_step.decision", "decision")
        return .begin(stepRun, decision)
    }

    private func scheduleStepResult(_ message: UnsafeMutablePointer<Steprun__V1__ScheduleStepResult>) throws(StepRunError) -> StoreResult {
        let body = message.pointee
        let stepRun = try nested("schedule_step.step_run").stepRun(required(body.step_run, "schedule_step.step_run"))
        let decision = try known(ScheduleDecision(wire: body.decision), raw: body.decision.rawValue, "schedule_step.decision", "decision")
        return .schedule(stepRun, decision)
    }

    private func scheduleStepsResult(_ message: UnsafeMutablePointer<Steprun__V1__ScheduleStepsResult>) throws(StepRunError) -> StoreResult {
        let body = message.pointee
        return .scheduledSteps(try texts(body.scheduled_steps, count: body.n_scheduled_steps, "schedule_steps.scheduled_steps"))
    }

    private func deletePendingStepsResult(
        _ message: UnsafeMutablePointer<Steprun__V1__DeletePendingStepsResult>
    ) throws(StepRunError) -> StoreResult {
        .deletedCount(try count(message.pointee.deleted_count, "delete_pending_steps.deleted_count"))
    }

    private func stepRunResult(_ message: UnsafeMutablePointer<Steprun__V1__StepRunResult>) throws(StepRunError) -> StoreResult {
        .stepRun(try nested("step_run.step_run").stepRun(required(message.pointee.step_run, "step_run.step_run")))
    }

    private func attemptResult(_ message: UnsafeMutablePointer<Steprun__V1__AttemptResult>) throws(StepRunError) -> StoreResult {
        .attempt(try nested("attempt.attempt").stepAttempt(required(message.pointee.attempt, "attempt.attempt")))
    }
}
