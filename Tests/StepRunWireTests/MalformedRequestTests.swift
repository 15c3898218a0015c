import NIOCore
import StepRunCore
import StepRunWire
import Testing

/// Bad frames are refused with the error the server answers with, and the request id whenever the
/// bytes still hold it.
@Suite struct MalformedRequestTests {
    static let runID = Fixture.runID.bytes
    static let stepRunID = Fixture.stepRunID.bytes

    func completeStep(id: UInt64 = 7, stepRunID: [UInt8] = stepRunID, output: [UInt8]) -> [UInt8] {
        ProtoWriter.request(id: id, call: CallField.completeStep) { body in
            body.bytes(1, stepRunID)
            body.bytes(2, output)
        }
    }

    func field(of error: WireDecodingError?) -> String? {
        guard case .invalidArgument(let field, _)? = error?.error else { return nil }
        return field
    }

    // MARK: Broken protobuf

    @Test func truncatedProtobufIsInvalidArgumentWithTheRecoveredID() throws {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(RequestFrame(id: 300, call: .store(.completeStep(stepRunID: Fixture.stepRunID, output: .empty))), into: &buffer)
        var payload = try Wire.payload(of: buffer)
        payload = payload.getSlice(at: payload.readerIndex, length: payload.readableBytes - 3)!
        let error = try #require(Wire.requestError(Array(payload.readableBytesView)))
        #expect(error.requestID == 300)
        #expect(field(of: error) == "request")
    }

    @Test func garbageBytesAreInvalidArgumentWithoutAnID() throws {
        let error = try #require(Wire.requestError([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
        #expect(error.requestID == nil)
        #expect(error.error.code == .invalidArgument)
    }

    @Test func idIsRecoveredEvenWhenOtherFieldsComeFirst() throws {
        var writer = ProtoWriter()
        writer.int(2, 1000)                      // timeout_ms before the id
        writer.bytes(CallField.getStepRun, [])   // an empty call
        writer.int(1, 12_345)                    // the id
        writer.tag(CallField.completeStep, 2)
        writer.varint(50)                        // a length running past the end
        let error = try #require(Wire.requestError(writer.bytes))
        #expect(error.requestID == 12_345)
        #expect(field(of: error) == "request")
    }

    @Test func invalidWireTypeStopsTheIDScanButKeepsWhatWasRead() throws {
        var writer = ProtoWriter()
        writer.int(1, 55)
        writer.tag(3, 7)  // wire type 7 does not exist
        let error = try #require(Wire.requestError(writer.bytes))
        #expect(error.requestID == 55)
    }

    // MARK: The call

    @Test func unknownCallIsUnimplementedWithTheID() throws {
        let bytes = ProtoWriter.request(id: 9, call: 99) { $0.bytes(1, Self.runID) }
        let error = try #require(Wire.requestError(bytes))
        #expect(error.requestID == 9)
        #expect(error.error.code == .unimplemented)
    }

    @Test func absentCallIsInvalidArgumentWithTheID() throws {
        var writer = ProtoWriter()
        writer.int(1, 10)
        writer.int(2, 500)
        let error = try #require(Wire.requestError(writer.bytes))
        #expect(error.requestID == 10)
        #expect(field(of: error) == "call")
    }

    @Test func emptyPayloadIsARequestWithoutCall() throws {
        let error = try #require(Wire.requestError([]))
        #expect(error.requestID == 0)
        #expect(field(of: error) == "call")
    }

    // MARK: Required fields

    @Test func missingResumeTargetIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 11, call: CallField.persistPauseResume) { body in
            body.bytes(1, Self.stepRunID)
            body.bytes(2, Array("{}".utf8))
        }
        let error = try #require(Wire.requestError(bytes))
        #expect(error.requestID == 11)
        #expect(field(of: error) == "target")
    }

    @Test func resumeTargetNamingNothingIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 11, call: CallField.persistPauseResume) { body in
            body.bytes(1, Self.stepRunID)
            body.bytes(2, Array("{}".utf8))
            body.bytes(3, [])
        }
        #expect(field(of: Wire.requestError(bytes)) == "target")
    }

    @Test func missingRequiredJSONIsInvalidArgument() throws {
        #expect(field(of: Wire.requestError(completeStep(output: []))) == "output")
    }

    @Test func emptyInputMeansEmptyObject() throws {
        let bytes = ProtoWriter.request(id: 12, call: CallField.beginStep) { body in
            body.bytes(1, Self.runID)
            body.text(2, "s")
        }
        let frame = try WireCodec.decodeRequest(ByteBuffer(bytes: bytes))
        #expect(frame.call == .store(.beginStep(runID: Fixture.runID, step: "s", input: .empty, recovery: nil)))
    }

    @Test func presentButEmptyNullableJSONIsRefusedNotReadAsNull() throws {
        let bytes = ProtoWriter.request(id: 12, call: CallField.beginStep) { body in
            body.bytes(1, Self.runID)
            body.text(2, "s")
            body.bytes(4, [])  // recovery present with no text
        }
        #expect(field(of: Wire.requestError(bytes)) == "recovery")
    }

    @Test func unspecifiedStrategyIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 13, call: CallField.recordFailureRecovery) { body in
            body.bytes(1, Self.stepRunID)
            body.text(3, "refund")
        }
        #expect(field(of: Wire.requestError(bytes)) == "strategy")
    }

    @Test func unknownEnumValueIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 14, call: CallField.recordAttempt) { body in
            body.bytes(1, Self.stepRunID)
            body.int(2, 1)
            body.int(3, 42)
        }
        let error = try #require(Wire.requestError(bytes))
        #expect(field(of: error) == "status")
        #expect(error.error.message.contains("42"))
    }

    // MARK: UUIDs, text and JSON

    @Test func fifteenByteUUIDIsInvalidArgumentNamingTheField() throws {
        let error = try #require(Wire.requestError(completeStep(stepRunID: Array(Self.stepRunID.prefix(15)), output: Array("{}".utf8))))
        #expect(error.requestID == 7)
        #expect(field(of: error) == "step_run_id")
        #expect(error.error.message.contains("15 bytes"))
    }

    @Test func absentUUIDIsInvalidArgument() throws {
        #expect(field(of: Wire.requestError(completeStep(stepRunID: [], output: Array("{}".utf8)))) == "step_run_id")
    }

    @Test(arguments: [
        "[1,2,3]",                 // array
        "42",                      // number
        "\"text\"",                // string
        "null",                    // null
        "true",                    // bool
        "{\"a\":",                 // truncated
        "{\"a\":1}{}",             // two documents
        "{'a':1}",                 // not JSON
        "{\"a\":\"\\u0000\"}",     // jsonb refuses \u0000
    ])
    func nonObjectJSONIsInvalidArgument(_ text: String) throws {
        let error = try #require(Wire.requestError(completeStep(output: Array(text.utf8))))
        #expect(error.requestID == 7)
        #expect(field(of: error) == "output")
    }

    @Test func invalidUTF8InsideJSONIsInvalidArgument() throws {
        let output = Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        #expect(field(of: Wire.requestError(completeStep(output: output))) == "output")
    }

    @Test func jsonNestedTenThousandDeepIsRefusedWithoutCrashing() throws {
        let depth = 10_000
        let text = "{\"a\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        let error = try #require(Wire.requestError(completeStep(output: Array(text.utf8))))
        #expect(field(of: error) == "output")
        #expect(error.error.message.contains("nesting"))
    }

    @Test func invalidUTF8StepNameIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 21, call: CallField.getStepRun) { body in
            body.bytes(1, Self.runID)
            body.bytes(2, [0x73, 0xFF, 0xFE])
        }
        let error = try #require(Wire.requestError(bytes))
        #expect(error.requestID == 21)
        #expect(field(of: error) == "step")
    }

    @Test func stepNameWithNULIsCarriedWholeForValidationToRefuse() throws {
        // A NUL must not shorten the name to "a" (which would act on another step).
        let bytes = ProtoWriter.request(id: 22, call: CallField.getStepRun) { body in
            body.bytes(1, Self.runID)
            body.bytes(2, [0x61, 0x00, 0x62])
        }
        let frame = try WireCodec.decodeRequest(ByteBuffer(bytes: bytes))
        guard case .store(let request) = frame.call, case .getStepRun(_, let step) = request else {
            Issue.record("unexpected \(frame)")
            return
        }
        #expect(step == "a\u{0}b")
        #expect(throws: StepRunError.self) { try request.validate(limits: .default) }
    }

    @Test func invalidUTF8InAListNamesTheElement() throws {
        let bytes = ProtoWriter.request(id: 23, call: CallField.deletePendingSteps) { body in
            body.bytes(1, Self.runID)
            body.text(2, "ok")
            body.bytes(2, [0xC0, 0x80])  // over-long encoding of NUL
        }
        #expect(field(of: Wire.requestError(bytes)) == "steps[1]")
    }

    // MARK: Transactions

    @Test func badOperationInTransactionNamesItsIndex() throws {
        let bytes = ProtoWriter.request(id: 30, call: CallField.transaction) { body in
            body.message(1) { operation in
                operation.message(51) { $0.bytes(1, Fixture.attemptID.bytes) }  // complete_attempt, fine
            }
            body.message(1) { operation in
                operation.message(30) { complete in                             // complete_step, short id
                    complete.bytes(1, [1, 2, 3])
                    complete.text(2, "{}")
                }
            }
        }
        let error = try #require(Wire.requestError(bytes))
        #expect(error.requestID == 30)
        guard case .transactionFailed(let index, .invalidArgument(let field, _)) = error.error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(index == 1)
        #expect(field == "operations[1].step_run_id")
    }

    @Test func unknownOperationInTransactionIsUnimplementedWithItsIndex() throws {
        let bytes = ProtoWriter.request(id: 31, call: CallField.transaction) { body in
            body.message(1) { $0.message(77) { _ in } }
        }
        let error = try #require(Wire.requestError(bytes))
        guard case .transactionFailed(0, let cause) = error.error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(cause.code == .unimplemented)
    }

    @Test func invalidUTF8InHelloClientNameIsInvalidArgument() throws {
        let bytes = ProtoWriter.request(id: 1, call: 10) { hello in
            hello.int(1, 1)
            hello.bytes(2, [0x77, 0xFF])
        }
        #expect(field(of: Wire.requestError(bytes)) == "hello.client_name")
    }
}

/// Responses a client cannot read are refused with the id they answer.
@Suite struct MalformedResponseTests {
    @Test func truncatedResponseKeepsItsID() throws {
        var buffer = ByteBuffer()
        WireCodec.encodeResponse(ResponseFrame(id: 404, outcome: .success(.store(.stepRun(Fixture.fullStepRun)))), into: &buffer)
        let payload = try Wire.payload(of: buffer)
        let cut = payload.getSlice(at: payload.readerIndex, length: payload.readableBytes - 10)!
        #expect(throws: WireDecodingError.self) { try WireCodec.decodeResponse(cut) }
        do {
            _ = try WireCodec.decodeResponse(cut)
        } catch {
            #expect(error.requestID == 404)
        }
    }

    @Test("a response's payloads are taken as the daemon sent them (Postgres jsonb output), unchecked")
    func responsePayloadsAreNotRechecked() throws {
        var stepRun = Fixture.fullStepRun
        stepRun.output = JSONPayload(trustedText: "[\"not an object\"]")
        var buffer = ByteBuffer()
        WireCodec.encodeResponse(ResponseFrame(id: 9, outcome: .success(.store(.stepRun(stepRun)))), into: &buffer)
        let decoded = try WireCodec.decodeResponse(try Wire.payload(of: buffer))
        guard case .success(.store(.stepRun(let back))) = decoded.outcome else {
            Issue.record("unexpected \(decoded)")
            return
        }
        #expect(back.output?.text == "[\"not an object\"]")
    }

    @Test func unknownResultIsUnimplementedWithTheID() throws {
        var writer = ProtoWriter()
        writer.int(1, 5)
        writer.bytes(88, [])
        #expect(throws: WireDecodingError(requestID: 5, error: .unimplemented(
            "unknown result (Response field 88); this client speaks protocol version 2"))
        ) {
            try WireCodec.decodeResponse(ByteBuffer(bytes: writer.bytes))
        }
    }

    @Test func successWithoutResultIsInvalidArgument() throws {
        var writer = ProtoWriter()
        writer.int(1, 6)
        do {
            _ = try WireCodec.decodeResponse(ByteBuffer(bytes: writer.bytes))
            Issue.record("decoded a response without a result")
        } catch {
            #expect(error.requestID == 6)
            #expect(error.error.code == .invalidArgument)
        }
    }

    @Test func shortUUIDInAResultIsRefused() throws {
        var writer = ProtoWriter()
        writer.int(1, 8)
        writer.message(50) { attemptResult in          // AttemptResult
            attemptResult.message(1) { attempt in       // StepAttempt
                attempt.bytes(1, [1, 2])
                attempt.bytes(2, Fixture.stepRunID.bytes)
                attempt.int(3, 1)
                attempt.int(4, 1)
            }
        }
        do {
            _ = try WireCodec.decodeResponse(ByteBuffer(bytes: writer.bytes))
            Issue.record("decoded a 2-byte UUID")
        } catch {
            #expect(error.requestID == 8)
            #expect(error.error == .invalidArgument(field: "attempt.attempt.id", message: "attempt.attempt.id must be a 16-byte UUID, got 2 bytes"))
        }
    }

    @Test("a bad element of a listed result names its index, however deep")
    func badElementOfAResultListNamesItsPath() throws {
        func error(_ build: (inout ProtoWriter) -> Void) -> StepRunError? {
            var writer = ProtoWriter()
            writer.int(1, 9)
            build(&writer)
            do {
                _ = try WireCodec.decodeResponse(ByteBuffer(bytes: writer.bytes))
                return nil
            } catch {
                return error.error
            }
        }
        func attempt(_ writer: inout ProtoWriter, id: [UInt8]) {
            writer.bytes(1, id)
            writer.bytes(2, Fixture.stepRunID.bytes)
            writer.int(3, 1)
            writer.int(4, 1)
        }
        // step_statuses: the second entry's name is not UTF-8.
        #expect(error { writer in
            writer.message(44) { result in
                result.message(1) { entry in entry.text(1, "a"); entry.int(2, 1) }
                result.message(1) { entry in entry.bytes(1, [0xFF]); entry.int(2, 1) }
            }
        } == .invalidArgument(field: "step_statuses.statuses[1].step", message: "step_statuses.statuses[1].step must be valid UTF-8"))
        // list_attempts: the third attempt's id is 2 bytes.
        #expect(error { writer in
            writer.message(56) { result in
                for id in [Fixture.attemptID.bytes, Fixture.attemptID.bytes, [1, 2]] {
                    result.message(1) { attempt(&$0, id: id) }
                }
            }
        } == .invalidArgument(field: "list_attempts.attempts[2].id", message: "list_attempts.attempts[2].id must be a 16-byte UUID, got 2 bytes"))
        // transaction: the second result's attempt has a 3-byte id (a nested message in an element).
        #expect(error { writer in
            writer.message(61) { result in
                result.message(1) { operation in operation.message(50) { $0.message(1) { attempt(&$0, id: Fixture.attemptID.bytes) } } }
                result.message(1) { operation in operation.message(50) { $0.message(1) { attempt(&$0, id: [1, 2, 3]) } } }
            }
        } == .invalidArgument(
            field: "transaction.results[1].attempt.attempt.id",
            message: "transaction.results[1].attempt.attempt.id must be a 16-byte UUID, got 3 bytes"))
        // transaction: the first result carries nothing.
        #expect(error { writer in
            writer.message(61) { result in result.message(1) { _ in } }
        } == .invalidArgument(field: "transaction.results[0]", message: "transaction.results[0] carries no result"))
    }

    @Test func unknownStatusCodeBecomesInternal() throws {
        var writer = ProtoWriter()
        writer.int(1, 3)
        writer.message(2) { status in
            status.int(1, 99)
            status.text(2, "from the future")
        }
        let frame = try WireCodec.decodeResponse(ByteBuffer(bytes: writer.bytes))
        guard case .failure(let error) = frame.outcome else {
            Issue.record("unexpected \(frame)")
            return
        }
        #expect(error.code == .internal)
        #expect(error.message.contains("from the future"))
    }
}
