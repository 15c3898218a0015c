import CStepRunProto
import Foundation
import StepRunCore

/// Reads the fields of an unpacked protobuf-c message into checked Swift values.
///
/// Every check the store's own validation does not make happens here, each failure naming the
/// proto field (with `prefix`, e.g. `operations[2].`) so the caller can tell what to fix.
struct FieldReader {
    /// Prepended to every field name in errors: `""`, `"steps[3]."`, `"operations[2]."`.
    var prefix: String
    /// Whether JSON payloads are checked. The server checks every request's; a client takes the
    /// daemon's answers as they come, since their payloads are Postgres `jsonb` output (and a payload
    /// sent back to a daemon is checked there again).
    var checksJSON: Bool

    init(prefix: String = "", checksJSON: Bool = true) {
        self.prefix = prefix
        self.checksJSON = checksJSON
    }

    /// A reader for a nested message or list element (`steps[3].`).
    func nested(_ field: String) -> FieldReader {
        FieldReader(prefix: prefix + field + ".", checksJSON: checksJSON)
    }

    func invalid(_ field: String, _ problem: String) -> StepRunError {
        .invalidArgument(field: prefix + field, message: "\(prefix + field) \(problem)")
    }

    /// A 16-byte UUID.
    func uuid(_ value: ProtobufCBinaryData, _ field: String) throws(StepRunError) -> UUID {
        guard let uuid = UUID(bytes: value.buffer) else {
            throw invalid(field, "must be a 16-byte UUID, got \(value.len) bytes")
        }
        return uuid
    }

    /// UTF-8 text carried in a `bytes` field (step names, targets).
    func text(_ value: ProtobufCBinaryData, _ field: String) throws(StepRunError) -> String {
        guard let text = String(validating: value.buffer, as: UTF8.self) else {
            throw invalid(field, "must be valid UTF-8")
        }
        return text
    }

    /// Every element of a repeated `bytes` field holding UTF-8 text.
    func texts(_ values: UnsafeMutablePointer<ProtobufCBinaryData>?, count: Int, _ field: String) throws(StepRunError) -> [String] {
        var texts: [String] = []
        texts.reserveCapacity(count)
        for index in 0..<count {
            texts.append(try text(values![index], "\(field)[\(index)]"))
        }
        return texts
    }

    /// A `string` field. protobuf-c hands these over NUL-terminated and unchecked, so the UTF-8 is
    /// checked here; anything after an embedded NUL is not seen (see `EncodeArena.cString`).
    func string(_ value: UnsafeMutablePointer<CChar>?, _ field: String) throws(StepRunError) -> String {
        guard let value else { return "" }
        guard let text = String(validatingCString: value) else {
            throw invalid(field, "must be valid UTF-8")
        }
        return text
    }

    /// A required JSON object.
    func json(_ value: ProtobufCBinaryData, _ field: String) throws(StepRunError) -> JSONPayload {
        guard checksJSON else { return JSONPayload(trustedText: String(decoding: value.buffer, as: UTF8.self)) }
        return try JSONPayload(validating: value.buffer, field: prefix + field)
    }

    /// A JSON object that defaults to `{}` when the field is empty (`input`).
    func jsonOrEmpty(_ value: ProtobufCBinaryData, _ field: String) throws(StepRunError) -> JSONPayload {
        value.len == 0 ? .empty : try json(value, field)
    }

    /// A nullable JSON object: nil unless its presence oneof is set.
    func optionalJSON(_ isSet: Bool, _ value: ProtobufCBinaryData, _ field: String) throws(StepRunError) -> JSONPayload? {
        isSet ? try json(value, field) : nil
    }

    /// A submessage the call cannot do without.
    func required<Message>(_ value: UnsafeMutablePointer<Message>?, _ field: String) throws(StepRunError) -> UnsafeMutablePointer<Message> {
        guard let value else { throw invalid(field, "is required") }
        return value
    }

    func count(_ value: Int64, _ field: String) throws(StepRunError) -> Int {
        guard value >= 0 else { throw invalid(field, "must not be negative, got \(value)") }
        return Int(value)
    }
}

extension ProtobufCBinaryData {
    /// The bytes, valid until the message that owns them is freed.
    var buffer: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: data, count: len)
    }
}

/// Field numbers of unknown fields protobuf-c kept aside while unpacking `message`.
func unknownFieldNumbers(_ message: ProtobufCMessage) -> [UInt32] {
    (0..<Int(message.n_unknown_fields)).map { message.unknown_fields[$0].tag }
}

/// The first unknown field numbered at least `lowest`: a oneof member added by a newer peer lands
/// among the unknown fields, while the oneof itself reads as not set.
func firstUnknownField(_ message: ProtobufCMessage, atLeast lowest: UInt32) -> UInt32? {
    unknownFieldNumbers(message).first { $0 >= lowest }
}
