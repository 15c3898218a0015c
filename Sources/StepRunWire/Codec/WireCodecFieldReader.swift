import CStepRunProto
import Foundation
import StepRunCore

/// Reads the fields of an unpacked protobuf-c message into checked Swift values.
///
/// Every check the store's own validation does not make happens here, each failure naming the
/// proto field (with `prefix`, e.g. `operations[2].`) so the caller can tell what to fix. The path
/// is only spelled out when a check fails: a reader for a nested message or list element keeps the
/// parts (`step_statuses.statuses`, 3), so decoding a valid message builds no field names.
struct FieldReader {
    /// The path of the enclosing reader, spelled out: `""` or `"operations[2]."`.
    private var parent: String
    /// This reader's own message, not yet joined to `parent`: a field name and, for a list
    /// element, its index. Nil for the top-level reader.
    private var field: String?
    private var index: Int?
    /// Whether JSON payloads are checked. The server checks every request's; a client takes the
    /// daemon's answers as they come, since their payloads are Postgres `jsonb` output (and a payload
    /// sent back to a daemon is checked there again).
    var checksJSON: Bool

    init(checksJSON: Bool = true) {
        self.init(parent: "", field: nil, index: nil, checksJSON: checksJSON)
    }

    private init(parent: String, field: String?, index: Int?, checksJSON: Bool) {
        self.parent = parent
        self.field = field
        self.index = index
        self.checksJSON = checksJSON
    }

    /// Prepended to every field name in errors: `""`, `"steps[3]."`, `"operations[2]."`.
    var prefix: String { path.map { $0 + "." } ?? "" }

    /// This reader's own field, spelled out (`steps[3]`); nil for the top-level reader.
    private var path: String? {
        guard let field else { return nil }
        return parent + (index.map { "\(field)[\($0)]" } ?? field)
    }

    /// A reader for a nested message (`get_step_run.step_run`).
    func nested(_ field: String) -> FieldReader {
        FieldReader(parent: self.field == nil ? parent : prefix, field: field, index: nil, checksJSON: checksJSON)
    }

    /// A reader for element `index` of a repeated message field (`steps[3]`).
    func element(_ field: String, _ index: Int) -> FieldReader {
        FieldReader(parent: self.field == nil ? parent : prefix, field: field, index: index, checksJSON: checksJSON)
    }

    func invalid(_ field: String, _ problem: String) -> StepRunError {
        .invalidArgument(field: prefix + field, message: "\(prefix + field) \(problem)")
    }

    /// This reader's own message, which must be present (an element of a repeated message field
    /// may be absent only in a malformed message).
    func present<Message>(_ value: UnsafeMutablePointer<Message>?) throws(StepRunError) -> UnsafeMutablePointer<Message> {
        guard let value else {
            let path = path ?? "message"
            throw .invalidArgument(field: path, message: "\(path) is required")
        }
        return value
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
            guard let text = String(validating: values![index].buffer, as: UTF8.self) else {
                throw invalid("\(field)[\(index)]", "must be valid UTF-8")
            }
            texts.append(text)
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

    /// A required JSON object. `field` is only evaluated to name a payload that fails the check.
    func json(_ value: ProtobufCBinaryData, _ field: @autoclosure () -> String) throws(StepRunError) -> JSONPayload {
        guard checksJSON else { return JSONPayload(trustedText: String(decoding: value.buffer, as: UTF8.self)) }
        return try JSONPayload(validating: value.buffer, field: prefix + field())
    }

    /// A JSON object that defaults to `{}` when the field is empty (`input`).
    func jsonOrEmpty(_ value: ProtobufCBinaryData, _ field: @autoclosure () -> String) throws(StepRunError) -> JSONPayload {
        value.len == 0 ? .empty : try json(value, field())
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
