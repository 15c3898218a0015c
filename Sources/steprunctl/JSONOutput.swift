import StepRunCore

/// A JSON document for `--json` output, rendered compactly with keys in the order given.
///
/// Stored payloads are embedded as the JSON they are, not re-encoded through `Double`, so a
/// 20-digit integer a worker stored comes back digit for digit.
indirect enum JSONOutput {
    case object([(String, JSONOutput)])
    case array([JSONOutput])
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    /// A payload already validated as a JSON object (by the store, or by steprunctl before sending).
    case payload(JSONPayload)

    /// `.payload(payload)`, or `.null` when there is none.
    static func payload(_ payload: JSONPayload?) -> JSONOutput {
        payload.map { .payload($0) } ?? .null
    }

    /// The compact JSON text, without a trailing newline.
    var rendered: String {
        var text = ""
        render(into: &text)
        return text
    }

    private func render(into text: inout String) {
        switch self {
        case .object(let members):
            text += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { text += "," }
                Self.appendString(key, to: &text)
                text += ":"
                value.render(into: &text)
            }
            text += "}"
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                element.render(into: &text)
            }
            text += "]"
        case .string(let string):
            Self.appendString(string, to: &text)
        case .int(let number):
            text += String(number)
        case .bool(let value):
            text += value ? "true" : "false"
        case .null:
            text += "null"
        case .payload(let payload):
            text += Self.compacted(payload.text)
        }
    }

    /// Appends `string` as a JSON string literal: quotes, backslashes and control characters escaped.
    static func appendString(_ string: String, to text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// Valid JSON text with the whitespace between tokens removed (Postgres prints `jsonb` spaced out).
    static func compacted(_ json: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(json.utf8.count)
        var inString = false
        var escaping = false
        for byte in json.utf8 {
            if inString {
                if escaping {
                    escaping = false
                } else if byte == UInt8(ascii: "\\") {
                    escaping = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                bytes.append(byte)
                continue
            }
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: "\""):
                inString = true
                bytes.append(byte)
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
