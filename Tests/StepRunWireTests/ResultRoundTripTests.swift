import StepRunCore
import StepRunWire
import Testing

/// Every reply a server can send survives encodeResponse → decodeResponse unchanged.
@Suite struct ResultRoundTripTests {
    static let storeResults: [StoreResult] = [
        .begin(Fixture.fullStepRun, .execute),
        .begin(Fixture.bareStepRun, .skip),
        .schedule(Fixture.bareStepRun, .schedule),
        .schedule(Fixture.fullStepRun, .skip),
        .scheduledSteps(["a", "b", "ünïcödé"]),
        .scheduledSteps([]),
        .deletedCount(0),
        .deletedCount(12_345),
        .stepRun(Fixture.fullStepRun),
        .stepRun(Fixture.bareStepRun),
        .stepRun(Fixture.emptyObjectsStepRun),
        .foundStepRun(Fixture.fullStepRun),
        .foundStepRun(nil),
        .steps(["first", "second"]),
        .steps([]),
        .outputs([Fixture.json(#"{"a":1}"#), .empty, Fixture.json(#"{"b":[true,false]}"#)]),
        .outputs([]),
        .stepRuns([Fixture.fullStepRun, Fixture.bareStepRun, Fixture.emptyObjectsStepRun]),
        .stepRuns([]),
        .statuses(["a": .pending, "b": .running, "c": .completed, "d": .failed]),
        .statuses([:]),
        .attempt(Fixture.runningAttempt),
        .attempt(Fixture.failedAttempt),
        .attemptCount(0),
        .attemptCount(7),
        .latestAttempt(Fixture.failedAttempt),
        .latestAttempt(nil),
        .attempts([Fixture.runningAttempt, Fixture.failedAttempt]),
        .attempts([]),
        .purged(PurgeCounts(stepRuns: 3, attempts: 9)),
        .purged(PurgeCounts(stepRuns: 0, attempts: 0)),
        .transaction([
            .begin(Fixture.bareStepRun, .execute),
            .schedule(Fixture.bareStepRun, .schedule),
            .scheduledSteps(["x"]),
            .deletedCount(2),
            .stepRun(Fixture.fullStepRun),
            .attempt(Fixture.runningAttempt),
        ]),
    ]

    @Test(arguments: storeResults)
    func storeResultSurvivesTheRoundTrip(_ result: StoreResult) throws {
        let frame = ResponseFrame(id: 99, outcome: .success(.store(result)))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func helloReplySurvivesTheRoundTrip() throws {
        let reply = HelloReply(serverName: "steprund 0.1.0", maxFrameBytes: 4 << 20, maxPayloadBytes: 1 << 20, maxInFlight: 256)
        let frame = ResponseFrame(id: 1, outcome: .success(.hello(reply)))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test(arguments: [
        HealthReply(serving: true, databaseLatencyMicros: 412, message: "ok"),
        HealthReply(serving: false, databaseLatencyMicros: -1, message: "database unreachable: connection refused"),
    ])
    func healthReplySurvivesTheRoundTrip(_ reply: HealthReply) throws {
        let frame = ResponseFrame(id: 2, outcome: .success(.health(reply)))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func nullAndEmptyObjectStayDistinct() throws {
        // Fixture.emptyObjectsStepRun has `{}` where bareStepRun has null; equality alone would
        // not notice if both decoded the same, so check the fields directly.
        let decoded = try Wire.roundTrip(ResponseFrame(id: 1, outcome: .success(.store(.stepRuns([
            Fixture.bareStepRun, Fixture.emptyObjectsStepRun,
        ])))))
        guard case .success(.store(.stepRuns(let stepRuns, nil))) = decoded.outcome, stepRuns.count == 2 else {
            Issue.record("unexpected \(decoded)")
            return
        }
        #expect(stepRuns[0].output == nil && stepRuns[0].completedAt == nil)
        #expect(stepRuns[1].output == .empty && stepRuns[1].completedAt == Timestamp(microsecondsSinceEpoch: 0))
    }

    @Test func transactionResultHoldingAReadBecomesInternalError() throws {
        // Only write results fit in a transaction result; the server must not crash or send garbage.
        let frame = ResponseFrame(id: 4, outcome: .success(.store(.transaction([.deletedCount(1), .steps(["a"])]))))
        let decoded = try Wire.roundTrip(frame)
        guard case .failure(let error) = decoded.outcome else {
            Issue.record("expected an error, got \(decoded)")
            return
        }
        #expect(decoded.id == 4)
        #expect(error.code == .internal)
    }
}
