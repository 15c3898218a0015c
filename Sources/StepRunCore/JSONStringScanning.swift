/// The string half of `JSONScanner`: UTF-8 and escape checks, and the size `jsonb` renders a
/// string at.
extension JSONScanner {
    /// Reads a string starting at its opening quote, checking UTF-8 and escapes.
    ///
    /// `jsonb` stores the decoded text and writes it back with its own escaping (`escape_json`):
    /// `"` `\\` and \b \f \n \r \t as two bytes, other control characters as `\u00XX`,
    /// everything else (`/` included) as plain UTF-8 — which is what `rendered` counts.
    mutating func readString(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        position += 1
        rendered += 2
        var pendingHighSurrogate = false
        while position < bytes.count {
            if !pendingHighSurrogate {
                // Every byte the byte loop sees needs it: skipPlainText stops exactly at such a byte.
                let plainStart = position
                skipPlainText(bytes)
                rendered += position - plainStart
                guard position < bytes.count else { break }
            }
            let byte = bytes[position]
            if pendingHighSurrogate && byte != UInt8(ascii: "\\") {
                throw fail("unpaired UTF-16 surrogate escape")
            }
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"):
                position += 1
                guard let escaped = peek(bytes) else { throw fail("unterminated string") }
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"),
                    UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    if pendingHighSurrogate { throw fail("unpaired UTF-16 surrogate escape") }
                    rendered += escaped == UInt8(ascii: "/") ? 1 : 2
                case UInt8(ascii: "u"):
                    let unit = try readHex4(bytes)
                    if pendingHighSurrogate {
                        guard (0xDC00...0xDFFF).contains(unit) else { throw fail("unpaired UTF-16 surrogate escape") }
                        pendingHighSurrogate = false
                    } else if (0xD800...0xDBFF).contains(unit) {
                        pendingHighSurrogate = true
                        rendered += 4  // the pair's scalar, past U+FFFF, is four bytes of UTF-8
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw fail("unpaired UTF-16 surrogate escape")
                    } else if unit == 0 {
                        throw fail("\\u0000 is not allowed (Postgres jsonb cannot store it)")
                    } else {
                        rendered += Self.renderedLength(ofEscapedUnit: unit)
                    }
                default:
                    position -= 1
                    throw fail("invalid escape sequence")
                }
            case 0x00..<0x20:
                throw fail("unescaped control character in string")
            case 0x20..<0x80:
                position += 1
                rendered += 1
            default:
                let scalarStart = position
                try readUTF8Scalar(bytes)
                rendered += position - scalarStart
            }
        }
        throw fail("unterminated string")
    }

    /// Bytes `escape_json` writes for a character given as `\uXXXX` (not NUL, not a surrogate).
    private static func renderedLength(ofEscapedUnit unit: UInt32) -> Int {
        switch unit {
        case 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x5C: 2
        case 0x00..<0x20: 6
        case 0x20..<0x80: 1
        case 0x80..<0x800: 2
        default: 3
        }
    }

    /// Skips string contents that need no checking — printable ASCII other than `"` and `\` —
    /// eight bytes at a time, up to the first byte that needs the byte loop. Payloads are mostly
    /// such text: this takes a 1 MiB payload's check from ~2 ms to ~0.2 ms.
    ///
    /// Each mask below is the classic "has a zero byte" bit trick. A mask may also flag bytes after
    /// a flagged one (a borrow runs upwards), never before it, so its lowest set bit is exactly the
    /// first byte that qualifies; with the word read little-endian, that is the first in memory.
    private mutating func skipPlainText(_ bytes: Span<UInt8>) {
        let raw = bytes.bytes
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        func zeroBytes(_ word: UInt64) -> UInt64 { (word &- ones) & ~word & highBits }
        while position + 8 <= raw.byteCount {
            let word = UInt64(littleEndian: raw.unsafeLoadUnaligned(fromByteOffset: position, as: UInt64.self))
            let nonASCII = word & highBits
            // Exact for bytes below 0x80; those at or above it are flagged by `nonASCII`.
            let control = (word &- 0x20 &* ones) & ~word & highBits
            let quote = zeroBytes(word ^ (UInt64(UInt8(ascii: "\"")) &* ones))
            let backslash = zeroBytes(word ^ (UInt64(UInt8(ascii: "\\")) &* ones))
            let flagged = nonASCII | control | quote | backslash
            if flagged != 0 {
                position += flagged.trailingZeroBitCount / 8
                return
            }
            position += 8
        }
    }

    private mutating func readHex4(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// Reads one multi-byte UTF-8 scalar, refusing overlong forms, surrogates and values past U+10FFFF.
    private mutating func readUTF8Scalar(_ bytes: Span<UInt8>) throws(JSONValidator.Failure) {
        let lead = bytes[position]
        let length: Int
        var scalar: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; scalar = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; scalar = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; scalar = UInt32(lead & 0x07)
        default: throw fail("invalid UTF-8")
        }
        guard position + length <= bytes.count else { throw fail("invalid UTF-8") }
        for index in 1..<length {
            let continuation = bytes[position + index]
            guard continuation & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
            scalar = scalar << 6 | UInt32(continuation & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else {
            throw fail("invalid UTF-8")
        }
        position += length
    }
}
