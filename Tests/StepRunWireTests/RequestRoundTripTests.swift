import StepRunCore
import StepRunWire
import Testing

/// Every call a client can make survives encodeRequest → decodeRequest unchanged.
@Suite struct RequestRoundTripTests {
    static let input = Fixture.json(#"{"amount":1200,"nested":{"list":[1,2.5,"x",null,true]}}"#)
    static let recovery = Fixture.json(#"{"compensate":"refund"}"#)

    /// One of every operation, nullable arguments both null and set.
    static let storeRequests: [StoreRequest] = [
        .beginStep(runID: Fixture.runID, step: "charge-card", input: input, recovery: recovery),
        .beginStep(runID: Fixture.runID, step: "charge-card", input: .empty, recovery: nil),
        .scheduleStep(runID: Fixture.runID, step: "ship", input: input, recovery: recovery),
        .scheduleStep(runID: Fixture.runID, step: "ship", input: .empty, recovery: nil),
        .scheduleSteps(runID: Fixture.runID, steps: [
            ScheduledStep(step: "a", input: input, recovery: recovery),
            ScheduledStep(step: "b"),
            ScheduledStep(step: "c", input: .empty, recovery: .empty),
        ]),
        .scheduleSteps(runID: Fixture.runID, steps: []),
        .deletePendingSteps(runID: Fixture.runID, steps: ["a", "b", "ünïcödé"]),
        .deletePendingSteps(runID: Fixture.runID, steps: []),
        .completeStep(stepRunID: Fixture.stepRunID, output: input),
        .completeManualStep(stepRunID: Fixture.stepRunID, output: input, manual: Fixture.json(#"{"actor":"ops"}"#)),
        .failStep(stepRunID: Fixture.stepRunID, error: Fixture.json(#"{"message":"boom"}"#)),
        .persistPauseResume(stepRunID: Fixture.stepRunID, output: input, target: .step("resume-here")),
        .persistPauseResume(stepRunID: Fixture.stepRunID, output: .empty, target: .complete),
        .persistApprovalResume(stepRunID: Fixture.stepRunID, okTarget: .step("approved"), errorTarget: .complete, outputKey: "approval"),
        .persistApprovalResume(stepRunID: Fixture.stepRunID, okTarget: .complete, errorTarget: .step("rejected"), outputKey: nil),
        .recordFailureRecovery(stepRunID: Fixture.stepRunID, strategy: .compensation, target: "refund"),
        .recordFailureRecovery(stepRunID: Fixture.stepRunID, strategy: .undo, target: "undo-it"),
        .updateRecovery(stepRunID: Fixture.stepRunID, recovery: recovery),
        .getStepRun(runID: Fixture.runID, step: "charge-card"),
        .completedSteps(runID: Fixture.runID),
        .completedOutputs(runID: Fixture.runID),
        .completedStepRunsForCompensation(runID: Fixture.runID),
        .stepStatuses(runID: Fixture.runID),
        .beginAttempt(stepRunID: Fixture.stepRunID),
        .completeAttempt(attemptID: Fixture.attemptID),
        .failAttempt(attemptID: Fixture.attemptID, error: Fixture.json(#"{"message":"timeout"}"#)),
        .recordAttempt(stepRunID: Fixture.stepRunID, attemptNumber: 4, status: .failed, error: Fixture.json(#"{"e":1}"#)),
        .recordAttempt(stepRunID: Fixture.stepRunID, attemptNumber: 1, status: .completed, error: nil),
        .attemptCount(stepRunID: Fixture.stepRunID),
        .latestAttempt(stepRunID: Fixture.stepRunID),
        .listAttempts(stepRunID: Fixture.stepRunID),
        .purgeRun(runID: Fixture.runID),
        .transaction([
            .completeAttempt(attemptID: Fixture.attemptID),
            .completeStep(stepRunID: Fixture.stepRunID, output: input),
        ]),
        // Every write operation inside one transaction.
        .transaction([
            .beginStep(runID: Fixture.runID, step: "s", input: input, recovery: nil),
            .scheduleStep(runID: Fixture.runID, step: "t", input: .empty, recovery: recovery),
            .scheduleSteps(runID: Fixture.runID, steps: [ScheduledStep(step: "u")]),
            .deletePendingSteps(runID: Fixture.runID, steps: ["u"]),
            .completeStep(stepRunID: Fixture.stepRunID, output: input),
            .completeManualStep(stepRunID: Fixture.stepRunID, output: input, manual: input),
            .failStep(stepRunID: Fixture.stepRunID, error: input),
            .persistPauseResume(stepRunID: Fixture.stepRunID, output: input, target: .complete),
            .persistApprovalResume(stepRunID: Fixture.stepRunID, okTarget: .step("ok"), errorTarget: .step("err"), outputKey: "k"),
            .recordFailureRecovery(stepRunID: Fixture.stepRunID, strategy: .undo, target: "s"),
            .updateRecovery(stepRunID: Fixture.stepRunID, recovery: recovery),
            .beginAttempt(stepRunID: Fixture.stepRunID),
            .completeAttempt(attemptID: Fixture.attemptID),
            .failAttempt(attemptID: Fixture.attemptID, error: input),
            .recordAttempt(stepRunID: Fixture.stepRunID, attemptNumber: 2, status: .running, error: nil),
        ]),
    ]

    @Test(arguments: storeRequests)
    func storeRequestSurvivesTheRoundTrip(_ request: StoreRequest) throws {
        let frame = RequestFrame(id: 42, timeoutMs: 1500, call: .store(request))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func everyOperationIsCovered() {
        let covered = Set(Self.storeRequests.map(\.operationName))
        #expect(covered.count == 25, "operations covered: \(covered.sorted())")
    }

    @Test func helloSurvivesTheRoundTrip() throws {
        let frame = RequestFrame(id: 1, call: .hello(Hello(clientName: "billing-worker 3.2", token: "s3cret-tøken")))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func helloWithoutTokenDecodesAsNil() throws {
        let frame = RequestFrame(id: 1, call: .hello(Hello(protocolVersion: 7, clientName: "", token: nil)))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func emptyTokenReadsAsNoToken() throws {
        let frame = RequestFrame(id: 1, call: .hello(Hello(clientName: "w", token: "")))
        guard case .hello(let hello) = try Wire.roundTrip(frame).call else {
            Issue.record("not a hello")
            return
        }
        #expect(hello.token == nil)
    }

    @Test func healthSurvivesTheRoundTrip() throws {
        let frame = RequestFrame(id: .max, timeoutMs: .max, call: .health)
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func idAndTimeoutOfZeroSurvive() throws {
        let frame = RequestFrame(id: 0, timeoutMs: 0, call: .store(.completedSteps(runID: Fixture.runID)))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func payloadTextIsCarriedByteForByte() throws {
        // Whitespace and key order are the caller's; the daemon passes payloads through untouched.
        let spaced = Fixture.json("{ \"b\" : 1 ,\n \"a\" : [ ] }")
        let frame = RequestFrame(id: 3, call: .store(.completeStep(stepRunID: Fixture.stepRunID, output: spaced)))
        guard case .store(.completeStep(_, let output)) = try Wire.roundTrip(frame).call else {
            Issue.record("not a complete_step")
            return
        }
        #expect(output.text == spaced.text)
    }

    @Test func outOfRangeAttemptNumberReachesValidationUnchanged() throws {
        // The wire must not clamp: validation refuses the number the caller actually sent.
        let request = StoreRequest.recordAttempt(stepRunID: Fixture.stepRunID, attemptNumber: 1 << 40, status: .running, error: nil)
        let frame = RequestFrame(id: 5, call: .store(request))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func readInsideTransactionIsRefusedWithItsIndex() throws {
        let frame = RequestFrame(id: 8, call: .store(.transaction([
            .beginAttempt(stepRunID: Fixture.stepRunID),
            .getStepRun(runID: Fixture.runID, step: "x"),
        ])))
        #expect(throws: WireDecodingError(
            requestID: 8,
            error: .transactionFailed(index: 1, cause: .invalidArgument(
                field: "operations[1]",
                message: "operations[1] names no write operation; only write operations can run inside a transaction")))
        ) {
            try Wire.roundTrip(frame)
        }
    }
}
