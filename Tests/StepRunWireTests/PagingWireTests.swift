import Foundation
import StepRunCore
import StepRunWire
import Testing

/// The paging fields of the list calls (docs/PROTOCOL.md §6, "Lists and pages") on the wire.
@Suite("Paging fields")
struct PagingWireTests {
    static let tokens: [PageToken] = [
        PageToken(list: .completedOutputs, scope: Fixture.runID, cursor: .timeKey(time: 1_733_300_000_123_456, insertedAt: -5, id: Fixture.stepRunID)),
        PageToken(list: .compensation, scope: Fixture.runID, cursor: .timeKey(time: 1 << 53, insertedAt: -(1 << 53), id: Fixture.runID)),
        PageToken(list: .stepStatuses, scope: Fixture.runID, cursor: .step("é-step ✓")),
        PageToken(list: .attempts, scope: Fixture.stepRunID, cursor: .attemptNumber(2_147_483_647)),
    ]

    @Test("a token reads back as the same list, scope and cursor", arguments: tokens)
    func tokenBytesRoundTrip(_ token: PageToken) throws {
        #expect(try PageToken(decoding: token.bytes) == token)
    }

    @Test func aPagedRequestCarriesItsSizeAndToken() throws {
        let token = Self.tokens[0]
        let frame = RequestFrame(id: 4, call: .store(.completedOutputs(runID: Fixture.runID, page: PageRequest(size: 3, after: token))))
        #expect(try Wire.roundTrip(frame) == frame)
    }

    @Test func aRequestWithoutPagingFieldsReadsAsAWholeListRead() throws {
        let frame = RequestFrame(id: 5, call: .store(.stepStatuses(runID: Fixture.runID)))
        guard case .store(.stepStatuses(_, let page)) = try Wire.roundTrip(frame).call else {
            Issue.record("not step_statuses")
            return
        }
        #expect(page == .whole)
    }

    @Test func aResultCarriesItsNextPageToken() throws {
        let next = Self.tokens[3]
        let frame = ResponseFrame(id: 6, outcome: .success(.store(.attempts([], next: next))))
        guard case .success(.store(.attempts(let attempts, let decoded))) = try Wire.roundTrip(frame).outcome else {
            Issue.record("not list_attempts")
            return
        }
        #expect(attempts.isEmpty && decoded == next)
    }

    static let badTokens: [[UInt8]] = [
        Array(tokens[0].bytes.dropLast()),
        PageToken(list: .completedSteps, scope: Fixture.runID, cursor: .timeKey(time: .max, insertedAt: 0, id: Fixture.runID)).bytes,
        // Int64.min, whose abs traps: time bytes 80 00 00 00 00 00 00 00, then inserted_at.
        PageToken(list: .completedOutputs, scope: Fixture.runID, cursor: .timeKey(time: .min, insertedAt: 0, id: Fixture.runID)).bytes,
        PageToken(list: .compensation, scope: Fixture.runID, cursor: .timeKey(time: 0, insertedAt: .min, id: Fixture.runID)).bytes,
        [],
        [2] + Array(tokens[3].bytes.dropFirst()),
    ]

    @Test("a token truncated, out of range, empty or of another version is refused naming the field", arguments: badTokens)
    func badTokensAreRefusedNamingTheField(_ bytes: [UInt8]) {
        do {
            _ = try PageToken(decoding: bytes)
            Issue.record("a truncated token was accepted")
        } catch {
            guard case .invalidArgument(let field, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(field == "page_token")
        }
    }
}
