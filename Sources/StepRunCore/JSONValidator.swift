/// Checks that bytes are one JSON object that Postgres `jsonb` will accept, without building a tree,
/// and measures the text Postgres will render for it.
///
/// The daemon passes payloads through as text, so it only needs to know they are well formed:
/// valid UTF-8, strict RFC 8259 syntax, an object at the top, nesting no deeper than `maxDepth`,
/// no `\u0000` or unpaired surrogate escapes, and no number outside `numeric`'s range (all three
/// of which `jsonb` refuses; `PostgresNumeric`). The scanner is iterative, so hostile nesting
/// cannot exhaust the stack.
///
/// What comes back from the database is `jsonb`'s own rendering, not the text that went in
/// (`{"a": 1, "b": [1, 2]}` separators, numbers written out in full, strings re-escaped), and it
/// can be far larger: `{"a":1e131071}` is 14 bytes in and 131,079 out. The row must fit a
/// response frame, so the scan also adds up that rendered size (`storedByteCount`) — exact except
/// for duplicate keys, which `jsonb` drops, so it is an upper bound.
public struct JSONValidator: Sendable {
    /// Deepest nesting of objects and arrays accepted.
    public var maxDepth: Int

    public init(maxDepth: Int = 256) {
        self.maxDepth = maxDepth
    }

    /// Why a payload was refused, with the byte offset where the problem was found.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public var offset: Int
        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Throws `Failure` unless `bytes` hold exactly one JSON object `jsonb` can store; returns the
    /// size in bytes of the text Postgres will render for it (`jsonb::text`), an upper bound when
    /// the object repeats a key.
    ///
    /// Contiguous bytes (a buffer off the wire, a native string's UTF-8) are scanned where they
    /// are; anything else is copied once first.
    @discardableResult
    public func validateObject(_ bytes: some Collection<UInt8>) throws(Failure) -> Int {
        let scan = { (span: Span<UInt8>) in
            Result { () throws(Failure) -> Int in
                var scanner = JSONScanner(maxDepth: maxDepth)
                try scanner.run(span)
                return scanner.rendered
            }
        }
        let outcome = bytes.withContiguousStorageIfAvailable { scan($0.span) } ?? scan(Array(bytes).span)
        return try outcome.get()
    }
}

/// The bytes travel as a `Span` argument rather than a stored property: a span cannot outlive
/// the storage it views, so a type holding one would have to be non-escapable itself.
struct JSONScanner {
    let maxDepth: Int
    var position = 0
    /// Bytes of `jsonb`'s text output for what has been scanned so far (see `JSONValidator`).
    var rendered = 0

    init(maxDepth: Int) {
        self.maxDepth = maxDepth
    }

    private enum Container { case object, array }

    func fail(_ reason: String) -> JSONValidator.Failure {
        JSONValidator.Failure(reason: reason, offset: position)
    }

    mutating func run(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        skipWhitespace(bytes)
        guard position < bytes.count else { throw fail("empty document; expected a JSON object") }
        guard bytes[position] == UInt8(ascii: "{") else {
            throw fail("expected a JSON object, found \(describeValueStart(bytes[position]))")
        }
        var stack: [Container] = []
        // Each iteration reads one value (possibly opening a container), then the separators after it.
        var expectingValue = true
        while true {
            skipWhitespace(bytes)
            if expectingValue {
                guard position < bytes.count else { throw fail("unexpected end of input") }
                switch bytes[position] {
                case UInt8(ascii: "{"):
                    try push(.object, &stack)
                    position += 1
                    skipWhitespace(bytes)
                    if peek(bytes) == UInt8(ascii: "}") {
                        position += 1
                        stack.removeLast()
                        expectingValue = false
                    } else {
                        try readKeyAndColon(bytes)
                    }
                    continue
                case UInt8(ascii: "["):
                    try push(.array, &stack)
                    position += 1
                    skipWhitespace(bytes)
                    if peek(bytes) == UInt8(ascii: "]") {
                        position += 1
                        stack.removeLast()
                        expectingValue = false
                    }
                    continue
                case UInt8(ascii: "\""):
                    try readString(bytes)
                case UInt8(ascii: "t"):
                    try readLiteral("true", bytes)
                case UInt8(ascii: "f"):
                    try readLiteral("false", bytes)
                case UInt8(ascii: "n"):
                    try readLiteral("null", bytes)
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    try readNumber(bytes)
                default:
                    throw fail("unexpected character \(describeByte(bytes[position]))")
                }
                expectingValue = false
            }
            // After a value: a separator, a closer, or the end of the document.
            skipWhitespace(bytes)
            guard let container = stack.last else {
                guard position == bytes.count else { throw fail("unexpected data after the JSON object") }
                return
            }
            guard position < bytes.count else { throw fail("unexpected end of input") }
            let byte = bytes[position]
            position += 1
            switch (container, byte) {
            case (.object, UInt8(ascii: ",")):
                rendered += 2  // jsonb writes ", "
                skipWhitespace(bytes)
                try readKeyAndColon(bytes)
                expectingValue = true
            case (.array, UInt8(ascii: ",")):
                rendered += 2
                expectingValue = true
            case (.object, UInt8(ascii: "}")), (.array, UInt8(ascii: "]")):
                stack.removeLast()
            default:
                position -= 1
                throw fail(container == .object ? "expected ',' or '}'" : "expected ',' or ']'")
            }
        }
    }

    private mutating func push(_ container: Container, _ stack: inout [Container]) throws(JSONValidator.Failure) {
        guard stack.count < maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
        stack.append(container)
        rendered += 2  // the brackets
    }

    func peek(_ bytes: Span<UInt8>) -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    private mutating func skipWhitespace(_ bytes: Span<UInt8>) {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func readKeyAndColon(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        guard peek(bytes) == UInt8(ascii: "\"") else { throw fail("expected a string key") }
        try readString(bytes)
        skipWhitespace(bytes)
        guard peek(bytes) == UInt8(ascii: ":") else { throw fail("expected ':' after key") }
        position += 1
        rendered += 2  // jsonb writes ": "
    }

    private mutating func readLiteral(_ literal: StaticString, _ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("invalid literal") }
        let start = position
        let matches = literal.withUTF8Buffer { expected in
            expected.indices.allSatisfy { bytes[start + $0] == expected[$0] }
        }
        guard matches else { throw fail("invalid literal") }
        position += count
        rendered += count
    }

    /// Reads a number, measuring it the way `numeric` will hold it (`PostgresNumeric`).
    private mutating func readNumber(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        let start = position
        var number = PostgresNumeric()
        if peek(bytes) == UInt8(ascii: "-") {
            number.negative = true
            position += 1
        }
        guard let first = peek(bytes), isDigit(first) else { throw fail("invalid number") }
        if first == UInt8(ascii: "0") {
            position += 1
            number.integerDigits = 1
        } else {
            number.firstSignificantDigit = 0
            let digitsStart = position
            while let byte = peek(bytes), isDigit(byte) { position += 1 }
            number.integerDigits = position - digitsStart
        }
        if peek(bytes) == UInt8(ascii: ".") {
            position += 1
            guard let byte = peek(bytes), isDigit(byte) else { throw fail("invalid number: digit expected after '.'") }
            let digitsStart = position
            while let byte = peek(bytes), isDigit(byte) {
                if number.firstSignificantDigit == nil && byte != UInt8(ascii: "0") {
                    number.firstSignificantDigit = number.integerDigits + position - digitsStart
                }
                position += 1
            }
            number.fractionDigits = position - digitsStart
        }
        if let byte = peek(bytes), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            position += 1
            var negative = false
            if let sign = peek(bytes), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                negative = sign == UInt8(ascii: "-")
                position += 1
            }
            guard let byte = peek(bytes), isDigit(byte) else { throw fail("invalid number: digit expected in exponent") }
            var magnitude = 0
            while let byte = peek(bytes), isDigit(byte) {
                // Saturates well past any exponent Postgres accepts, so a long one cannot overflow.
                magnitude = min(magnitude * 10 + Int(byte - UInt8(ascii: "0")), PostgresNumeric.exponentSaturation)
                position += 1
            }
            number.exponent = negative ? -magnitude : magnitude
        }
        guard let length = number.renderedLength else {
            let end = position
            position = start
            throw fail("number \(excerpt(bytes, start, end)) is outside the range Postgres can store "
                + "(numeric holds at most \(PostgresNumeric.maxIntegerDigits) digits before the decimal point "
                + "and \(PostgresNumeric.maxScale) after it)")
        }
        rendered += length
    }

    /// The text of bytes `start..<end` (ASCII here), shortened in the middle when long.
    private func excerpt(_ bytes: Span<UInt8>, _ start: Int, _ end: Int) -> String {
        func text(_ range: Range<Int>) -> String { String(decoding: range.map { bytes[$0] }, as: UTF8.self) }
        guard end - start > 40 else { return text(start..<end) }
        return text(start..<(start + 20)) + "…" + text((end - 12)..<end)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func describeValueStart(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "["): "an array"
        case UInt8(ascii: "\""): "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "a boolean"
        case UInt8(ascii: "n"): "null"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): "a number"
        default: "invalid JSON (\(describeByte(byte)))"
        }
    }

    private func describeByte(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }
}
