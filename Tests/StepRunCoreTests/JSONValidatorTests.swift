import StepRunCore
import Testing

@Suite("JSON payload validation")
struct JSONValidatorTests {
    @Test("well-formed objects are accepted", arguments: [
        "{}", " { } ", "{\"a\":1}", "{\"a\":[1,2.5,-3e10,true,false,null,\"s\"],\"b\":{\"c\":{}}}",
        "{\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}", "{\"utf8\":\"héllo 😀 中文\"}",
    ])
    func acceptsObjects(_ text: String) throws {
        _ = try JSONPayload(validating: text, field: "input")
    }

    @Test("anything but one well-formed object is refused", arguments: [
        "", "[]", "\"s\"", "1", "null", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "{\"a\":01}", "{\"a\":1.}",
        "{\"a\":tru}", "{\"a\":\"\u{1}\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800x\"}", "{} {}", "{\"a\":[1,]}", "{\"a\":1}]",
    ])
    func refusesOthers(_ text: String) {
        #expect(throws: StepRunError.self) { _ = try JSONPayload(validating: text, field: "input") }
    }

    @Test("invalid UTF-8 is refused")
    func refusesInvalidUTF8() {
        let bytes: [[UInt8]] = [
            Array("{\"a\":\"".utf8) + [0xC3] + Array("\"}".utf8),
            Array("{\"a\":\"".utf8) + [0xC0, 0xAF] + Array("\"}".utf8),
            Array("{\"a\":\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"}".utf8),
            Array("{\"a\":\"".utf8) + [0xFF] + Array("\"}".utf8),
        ]
        for sample in bytes {
            #expect(throws: StepRunError.self) { _ = try JSONPayload(validating: sample, field: "input") }
        }
    }

    /// String contents are skipped eight bytes at a time until a word holds something to check;
    /// each case puts that something at every offset within and across such words.
    @Test("what string contents need checking is found wherever it falls", arguments: [
        (Array(#"\""#.utf8), nil), (Array(#"\\"#.utf8), nil), (Array(#"\u00e9"#.utf8), nil),
        (Array(#"\ud83d\ude00"#.utf8), nil), (Array("é".utf8), nil), (Array("😀".utf8), nil),
        ([0x01], 0), ([0x1F], 0), ([0x7F], nil), ([0xFF], 0), ([0x80], 0), ([0xC3], 0), ([0xED, 0xA0, 0x80], 0),
        (Array(#"\ud800"#.utf8), 6), (Array(#"\x"#.utf8), 1),
    ] as [([UInt8], Int?)])
    func stringContentsAtEveryOffset(_ inner: [UInt8], failsAt: Int?) {
        let head = Array(#"{"key":""#.utf8)
        for offset in 0..<20 {
            let bytes = head + Array(repeating: UInt8(ascii: "a"), count: offset) + inner
                + Array(repeating: UInt8(ascii: "b"), count: 20) + Array(#""}"#.utf8)
            do {
                try JSONValidator().validateObject(bytes)
                #expect(failsAt == nil, "accepted \(inner) at offset \(offset)")
            } catch {
                #expect(error.offset == failsAt.map { head.count + offset + $0 }, "\(error) for \(inner) at offset \(offset)")
            }
        }
    }

    @Test("bytes that are not contiguous in memory are checked the same way")
    func nonContiguousBytes() throws {
        let valid = Array(#"{"a":"a long enough string of plain text","b":[1,2]}"#.utf8)
        try JSONValidator().validateObject(valid.lazy.map { $0 })
        #expect(throws: JSONValidator.Failure.self) { try JSONValidator().validateObject(valid.dropLast().lazy.map { $0 }) }
    }

    @Test("nesting 10,000 deep is refused without exhausting the stack")
    func deepNestingIsRefused() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: StepRunError.self) { _ = try JSONPayload(validating: "{\"a\":" + deep + "}", field: "input") }
    }

    @Test("the error names the field")
    func errorNamesField() {
        do {
            _ = try JSONPayload(validating: "[1]", field: "output")
            Issue.record("expected an error")
        } catch {
            #expect(error == .invalidArgument(field: "output", message: error.message))
            #expect(error.message.contains("an array"))
        }
    }

    @Test("payloads compare by JSON value, not spacing or key order")
    func payloadEquality() throws {
        #expect(try JSONPayload(validating: "{\"a\": 1, \"b\": [true]}") == JSONPayload(["b": [true], "a": 1]))
    }

    @Test("numbers at numeric's edges are accepted, one step past them refused, naming the field and the range")
    func numericRange() throws {
        for number in ["9.9e131071", "99999e131067", "0.1e131072", "1e-16383", "0.1e-16382", "0e1073741822", "-0.0"] {
            try JSONValidator().validateObject((#"{"a":"# + number + "}").utf8)
        }
        for number in ["1e131072", "1e1000000", "1e-1000000", "1.5e-16383", "0e-16384", "0e1073741823"] {
            do {
                _ = try JSONPayload(validating: #"{"a":["# + number + "]}", field: "output")
                Issue.record("\(number) should be refused")
            } catch {
                #expect(error == .invalidArgument(field: "output", message: error.message))
                #expect(error.message.contains(number) && error.message.contains("16383"))
            }
        }
    }

    @Test("the stored size counts jsonb's separators, full numbers and its own escaping")
    func storedSize() throws {
        #expect(try JSONPayload(validating: #"{"a":[1,2],"b":{}}"#).storedByteCount == #"{"a": [1, 2], "b": {}}"#.utf8.count)
        #expect(try JSONPayload(validating: #"{"a":1e3}"#).storedByteCount == #"{"a": 1000}"#.utf8.count)
        #expect(try JSONPayload(validating: #"{"a":"\u00e9\/\u0001"}"#).storedByteCount == #"{"a": "é/\u0001"}"#.utf8.count)
        #expect(JSONPayload(trustedText: #"{"a": 1}"#).storedByteCount == 8)
    }
}
