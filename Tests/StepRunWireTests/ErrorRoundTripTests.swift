import StepRunCore
import StepRunWire
import Testing

/// Every StepRunError the server throws reaches the client as the same case.
@Suite struct ErrorRoundTripTests {
    static let plainErrors: [StepRunError] = [
        .cancelled("the client went away"),
        .invalidArgument(field: "steps[3].input", message: "steps[3].input must be a JSON object: expected a JSON object, found an array at byte 0"),
        .invalidArgument(field: "", message: "no field to blame"),
        .deadlineExceeded("deadline of 5000 ms passed"),
        .notFound("step run 0190a1b2-c3d5-7000-8000-000000000001 does not exist"),
        .alreadyExists("attempt 2 already exists"),
        .permissionDenied("not allowed"),
        .resourceExhausted("too many requests in flight (256)"),
        .staleStepRun(status: .pending),
        .staleStepRun(status: .running),
        .staleStepRun(status: .completed),
        .staleStepRun(status: .failed),
        .pageRequired("page_required: completed_outputs of this run does not fit one response; page it"),
        .staleAttempt(status: .running),
        .staleAttempt(status: .completed),
        .staleAttempt(status: .failed),
        .failedPrecondition("some other precondition"),
        .aborted("serialization failure, retry"),
        .unavailable("database unreachable"),
        .internal("unexpected"),
        .unauthenticated("missing or wrong token"),
        .unimplemented("unknown call (Request field 70)"),
        .cancelled(""),
    ]

    static let allErrors: [StepRunError] = plainErrors + plainErrors.enumerated().map { index, cause in
        .transactionFailed(index: index, cause: cause)
    }

    @Test(arguments: allErrors)
    func errorSurvivesTheRoundTrip(_ error: StepRunError) throws {
        let frame = ResponseFrame(id: 77, outcome: .failure(error))
        let decoded = try Wire.roundTrip(frame)
        #expect(decoded == frame)
        if case .failure(let decodedError) = decoded.outcome {
            #expect(decodedError.code == error.code)
            #expect(decodedError.message == error.message)
            #expect(decodedError.reason == error.reason)
        }
    }

    @Test func nestedTransactionFailureKeepsTheOuterIndexAndInnermostCause() throws {
        // The store never nests transactions; if it did, the client still learns the index and the real cause.
        let error = StepRunError.transactionFailed(index: 2, cause: .transactionFailed(index: 5, cause: .staleAttempt(status: .failed)))
        let decoded = try Wire.roundTrip(ResponseFrame(id: 1, outcome: .failure(error)))
        guard case .failure(.transactionFailed(let index, let cause)) = decoded.outcome else {
            Issue.record("unexpected \(decoded)")
            return
        }
        #expect(index == 2)
        #expect(cause.code == .failedPrecondition)
    }
}
