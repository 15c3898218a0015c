import Foundation
import StepRunCore
@testable import StepRunPostgres
import Testing
import StepRunTesting

/// The validator's two promises about Postgres, checked against Postgres itself: what it accepts
/// `jsonb` accepts (numbers within `numeric`'s range), and the size it predicts is the size of
/// `jsonb::text`, which is what every read returns.
@Suite("The validator predicts what Postgres stores and renders")
struct StoredSizeTests {
    /// Objects whose rendering the validator must predict to the byte.
    static let exact: [String] = [
        #"{}"#, #"{"a":{}}"#, #"{"a":[]}"#, #"{ "a" : [ 1 , 2 , [ ] , { } ] , "b" : null }"#,
        #"{"t":true,"f":false,"n":null}"#, "{\n\t\"a\"\r:\n1}",
        // numbers: numeric writes them out in full, keeps the written scale, drops a zero's sign
        #"{"a":0}"#, #"{"a":-0}"#, #"{"a":-0.0}"#, #"{"a":0.000}"#, #"{"a":1.50}"#, #"{"a":-12.5}"#,
        #"{"a":1e5}"#, #"{"a":1E+5}"#, #"{"a":1e-5}"#, #"{"a":-1.25e-7}"#, #"{"a":12.345e2}"#, #"{"a":12.345e-2}"#,
        #"{"a":0.000e3}"#, #"{"a":0.001e3}"#, #"{"a":0.1e1}"#, #"{"a":100e-2}"#, #"{"a":123e-5}"#, #"{"a":0e5}"#,
        #"{"a":0e-7}"#, #"{"a":123456789012345678901234567890.123456789}"#, #"{"a":1e+0000000000000000000042}"#,
        #"{"a":9.9e131071}"#, #"{"a":-1e131071}"#, #"{"a":1e-16383}"#, #"{"a":0.1e-16382}"#, #"{"a":0e-16383}"#,
        #"{"a":0e1073741822}"#, #"{"a":[1,1,1,1,1]}"#,
        // strings: jsonb decodes escapes and writes its own
        #"{"s":"plain text that is long enough to take the eight-byte fast path, twice over"}"#,
        #"{"s":"\u00e9\u20ac\ud83d\ude00\u0041"}"#, #"{"s":"é€😀"}"#, #"{"s":"\b\f\n\r\t"}"#,
        #"{"s":"\u0008\u0009\u000a\u000c\u000d"}"#, #"{"s":"\u0001\u001f\u000b"}"#, #"{"s":"\/\"\\"}"#,
        #"{"s":"\u0022\u005c\u002f\u007f"}"#, "{\"s\":\"\u{7F}\"}", #"{"\n\u0001key":"v"}"#,
        #"{"s":"a long run of ascii before an escape: 0123456789abcdef\n0123456789abcdef\u0003 and after"}"#,
        #"{"nested":{"deeper":[{"x":[1.0,"two",{"three":[null,true]}]}]}}"#,
    ]

    @Test("the predicted size is octet_length(x::jsonb::text)", arguments: exact)
    func predictedSizeIsPostgresRendering(_ text: String) async throws {
        let predicted = try JSONValidator().validateObject(text.utf8)
        #expect(predicted == (try await renderedLength(text)))
    }

    @Test("the prediction holds for 300 random objects (numbers, escapes, nesting, whitespace)")
    func predictedSizeHoldsForRandomObjects() async throws {
        var generator = RandomJSON(seed: 20)
        for _ in 0..<300 {
            let text = generator.object(depth: 0)
            let predicted = try JSONValidator().validateObject(text.utf8)
            let actual = try await renderedLength(text)
            #expect(predicted == actual, "\(text)")
        }
    }

    @Test("a repeated key makes the prediction an upper bound")
    func repeatedKeyIsAnUpperBound() async throws {
        let text = #"{"a":1,"b":[1,2],"a":"longer value","b":3}"#
        let predicted = try JSONValidator().validateObject(text.utf8)
        let actual = try await renderedLength(text)
        #expect(predicted >= actual)
    }

    /// Numbers at and just past each edge of `numeric`'s range.
    static let refused: [String] = [
        "1e1000000", "1e-1000000", "1e131072", "10e131071", "-1e131072", "1.5e-16383", "1e-16384", "0.01e-16382",
        "0e-16384", "0.000000e-16378", "0e1073741823", "0e-1073741823", "1e99999999999999999999999",
        "1." + String(repeating: "0", count: 16_384),
    ]

    @Test("a number numeric cannot hold is refused by both", arguments: refused)
    func outOfRangeNumbersAreRefusedByBoth(_ number: String) async throws {
        let text = #"{"a":"# + number + "}"
        #expect(throws: JSONValidator.Failure.self) { try JSONValidator().validateObject(text.utf8) }
        await #expect(throws: StepRunError.self) { _ = try await renderedLength(text) }
    }

    @Test("1e131071 renders 131,072 digits: the stored size, not the sent one, is what is bounded")
    func smallNumberRendersLarge() throws {
        #expect(try JSONValidator().validateObject(#"{"a":1e131071}"#.utf8) == 131_072 + 7)
    }

    private func renderedLength(_ text: String) async throws -> Int {
        let repository = try await TestDatabase.repository()
        let rows = try await repository.pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            do throws(PGError) {
                return try connection.execute(
                    PreparedStatement(name: "test_rendered_length", sql: "SELECT octet_length($1::jsonb::text)"), [.text(text)])
            } catch {
                throw error.storeError(context: "rendering jsonb")
            }
        }
        return try rows.int(0, 0)
    }
}

/// Random JSON objects with distinct keys, from a fixed seed (SplitMix64): every kind of number,
/// escape, raw UTF-8 and whitespace the size computation distinguishes.
struct RandomJSON {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }

    mutating func space() -> String { ["", "", " ", "\n", "\t ", "\r\n  "][next(6)] }

    mutating func digits(_ count: Int) -> String { String((0..<count).map { _ in Character(String(next(10))) }) }

    mutating func number() -> String {
        var text = next(3) == 0 ? "-" : ""
        text += next(3) == 0 ? "0" : String(1 + next(9)) + digits(next(25))
        if next(2) == 0 { text += "." + digits(1 + next(20)) }
        if next(2) == 0 {
            text += ["e", "E"][next(2)] + ["", "+", "-"][next(3)] + String(repeating: "0", count: next(3)) + String(next(400))
        }
        return text
    }

    mutating func string() -> String {
        var text = "\""
        for _ in 0..<next(40) {
            switch next(10) {
            case 0: text += ["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"][next(8)]
            case 1:
                let units = [0x01, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1F, 0x20, 0x22, 0x2F, 0x5C, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0x20AC, 0xFFFD, 0xFFFF]
                text += "\\u" + String(format: "%04x", units[next(units.count)])
            case 2: text += "\\ud83d\\ude00"
            case 3: text += ["é", "€", "😀", "\u{7F}", "ß"][next(5)]
            default:
                let printable = Array("aZ09 !#$%&'()*+,-.:;<=>?@[]^_`{|}~")
                text += String(repeating: "abcdefgh", count: next(3)) + String(printable[next(printable.count)])
            }
        }
        return text + "\""
    }

    mutating func value(depth: Int) -> String {
        switch next(depth >= 3 ? 4 : 6) {
        case 0: return number()
        case 1: return string()
        case 2: return ["true", "false", "null"][next(3)]
        case 3: return number()
        case 4: return object(depth: depth + 1)
        default:
            let elements = (0..<next(5)).map { _ in space() + value(depth: depth + 1) + space() }
            return "[" + elements.joined(separator: ",") + "]"
        }
    }

    mutating func object(depth: Int) -> String {
        let members = (0..<next(6)).map { index in
            space() + "\"k\(index)" + (next(4) == 0 ? "\\n" : "") + "\"" + space() + ":" + space() + value(depth: depth) + space()
        }
        return "{" + members.joined(separator: ",") + "}"
    }
}
