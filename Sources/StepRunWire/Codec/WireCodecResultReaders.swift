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
        default:
            if let result = try storeResult(r.result_case.rawValue, in: response) { return .store(result) }
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
        // protobuf-c sets the case only to a member TransactionOperationResult has: a write's shape.
        if let result = try storeResult(r.result_case.rawValue, in: message) { return result }
        if let field = firstUnknownField(r.base, atLeast: firstResultField) {
            throw .unimplemented("unknown transaction result (TransactionOperationResult field \(field))")
        }
        throw .invalidArgument(field: String(prefix.dropLast()), message: "\(prefix.dropLast()) carries no result")
    }

    /// Reads the result message numbered `number` from the oneof of `carrier` (a `Response` or a
    /// `TransactionOperationResult`, which share field numbers): the one decoder entry per result
    /// shape. Nil for a number that is no store result (hello, health, not set).
    private func storeResult<Carrier>(_ number: UInt32, in carrier: UnsafeMutablePointer<Carrier>) throws(StepRunError) -> StoreResult? {
        let member = OneofMember.get(carrier, number: number)
        /// The member as `Message`; it is required.
        func body<Message>(_: Message.Type) throws(StepRunError) -> UnsafeMutablePointer<Message> {
            guard let member else {
                throw invalid(OneofMember.messageField(of: carrier, number).map { String(cString: $0.pointee.name) } ?? "result", "is required")
            }
            return member.assumingMemoryBound(to: Message.self)
        }
        switch number {
        case STEPRUN__V1__RESPONSE__RESULT_BEGIN_STEP.rawValue: return try beginStepResult(body(Steprun__V1__BeginStepResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEP.rawValue: return try scheduleStepResult(body(Steprun__V1__ScheduleStepResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_SCHEDULE_STEPS.rawValue:
            return try scheduleStepsResult(body(Steprun__V1__ScheduleStepsResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_DELETE_PENDING_STEPS.rawValue:
            return try deletePendingStepsResult(body(Steprun__V1__DeletePendingStepsResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_STEP_RUN.rawValue: return try stepRunResult(body(Steprun__V1__StepRunResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_GET_STEP_RUN.rawValue:
            let b = try body(Steprun__V1__GetStepRunResult.self).pointee
            return .foundStepRun(try b.step_run.map { (stepRun) throws(StepRunError) in
                try nested("get_step_run.step_run").stepRun(stepRun)
            })
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEPS.rawValue:
            let b = try body(Steprun__V1__CompletedStepsResult.self).pointee
            return .steps(try texts(b.steps, count: b.n_steps, "completed_steps.steps"),
                          next: try nextToken(b, "completed_steps.next_page_token"))
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_OUTPUTS.rawValue:
            let b = try body(Steprun__V1__CompletedOutputsResult.self).pointee
            var outputs: [JSONPayload] = []
            outputs.reserveCapacity(b.n_outputs)
            for index in 0..<b.n_outputs {
                outputs.append(try jsonOrEmpty(b.outputs[index], "completed_outputs.outputs[\(index)]"))
            }
            return .outputs(outputs, next: try nextToken(b, "completed_outputs.next_page_token"))
        case STEPRUN__V1__RESPONSE__RESULT_COMPLETED_STEP_RUNS_FOR_COMPENSATION.rawValue:
            let b = try body(Steprun__V1__CompletedStepRunsForCompensationResult.self).pointee
            var stepRuns: [StepRun] = []
            stepRuns.reserveCapacity(b.n_step_runs)
            for index in 0..<b.n_step_runs {
                let reader = element("completed_step_runs_for_compensation.step_runs", index)
                stepRuns.append(try reader.stepRun(reader.present(b.step_runs[index])))
            }
            return .stepRuns(stepRuns, next: try nextToken(b, "completed_step_runs_for_compensation.next_page_token"))
        case STEPRUN__V1__RESPONSE__RESULT_STEP_STATUSES.rawValue:
            let b = try body(Steprun__V1__StepStatusesResult.self).pointee
            var statuses: [String: StepStatus] = [:]
            statuses.reserveCapacity(b.n_statuses)
            for index in 0..<b.n_statuses {
                let reader = element("step_statuses.statuses", index)
                let entry = try reader.present(b.statuses[index]).pointee
                statuses[try reader.text(entry.step, "step")] = try reader.stepStatus(entry.status, "status")
            }
            return .statuses(statuses, next: try nextToken(b, "step_statuses.next_page_token"))
        case STEPRUN__V1__RESPONSE__RESULT_ATTEMPT.rawValue: return try attemptResult(body(Steprun__V1__AttemptResult.self))
        case STEPRUN__V1__RESPONSE__RESULT_ATTEMPT_COUNT.rawValue:
            let b = try body(Steprun__V1__AttemptCountResult.self).pointee
            return .attemptCount(try count(b.count, "attempt_count.count"))
        case STEPRUN__V1__RESPONSE__RESULT_LATEST_ATTEMPT.rawValue:
            let b = try body(Steprun__V1__LatestAttemptResult.self).pointee
            return .latestAttempt(try b.attempt.map { (attempt) throws(StepRunError) in
                try nested("latest_attempt.attempt").stepAttempt(attempt)
            })
        case STEPRUN__V1__RESPONSE__RESULT_LIST_ATTEMPTS.rawValue:
            let b = try body(Steprun__V1__ListAttemptsResult.self).pointee
            var attempts: [StepAttempt] = []
            attempts.reserveCapacity(b.n_attempts)
            for index in 0..<b.n_attempts {
                let reader = element("list_attempts.attempts", index)
                attempts.append(try reader.stepAttempt(reader.present(b.attempts[index])))
            }
            return .attempts(attempts, next: try nextToken(b, "list_attempts.next_page_token"))
        case STEPRUN__V1__RESPONSE__RESULT_PURGE_RUN.rawValue:
            let b = try body(Steprun__V1__PurgeRunResult.self).pointee
            return .purged(PurgeCounts(
                stepRuns: try count(b.step_runs, "purge_run.step_runs"),
                attempts: try count(b.attempts, "purge_run.attempts")))
        case STEPRUN__V1__RESPONSE__RESULT_TRANSACTION.rawValue:
            let b = try body(Steprun__V1__TransactionResult.self).pointee
            var results: [StoreResult] = []
            results.reserveCapacity(b.n_results)
            for index in 0..<b.n_results {
                let reader = element("transaction.results", index)
                results.append(try reader.transactionOperationResult(reader.present(b.results[index])))
            }
            return .transaction(results)
        default:
            return nil
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
