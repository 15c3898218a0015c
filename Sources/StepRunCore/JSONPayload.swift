import Foundation

/// A JSON object payload, carried as its UTF-8 text.
///
/// Payloads pass through the daemon untouched: it checks they are well-formed objects within
/// the size limit and hands the text to Postgres, which stores it as `jsonb`. Build one from a
/// dictionary literal or an `Encodable` value; read one with `object` or `decode(_:)`.
public struct JSONPayload: Sendable, Hashable, CustomStringConvertible, ExpressibleByDictionaryLiteral {
    /// The JSON text (always a single object).
    public let text: String

    /// The payload as UTF-8 bytes.
    public var utf8: String.UTF8View { text.utf8 }

    /// The size of the JSON text in bytes.
    public var byteCount: Int { text.utf8.count }

    /// The size of the text Postgres will hand back for this payload once stored as `jsonb`
    /// (`jsonb::text`: its own separators, numbers in full, its own string escaping), which is
    /// what a response carries; an upper bound when a key repeats. See `JSONValidator`.
    public let storedByteCount: Int

    /// Wraps text that is already known to be a valid JSON object as Postgres renders it (read back from Postgres).
    package init(trustedText text: String) {
        self.text = text
        self.storedByteCount = text.utf8.count
    }

    /// Checks `text` is a single JSON object, throwing `StepRunError.invalidArgument` naming `field` if not.
    public init(validating text: String, field: String = "payload") throws(StepRunError) {
        do {
            self.storedByteCount = try JSONValidator().validateObject(text.utf8)
        } catch {
            throw .invalidArgument(field: field, message: "\(field) must be a JSON object: \(error)")
        }
        self.text = text
    }

    /// Checks raw bytes (as received off the wire) are valid UTF-8 holding a single JSON object.
    /// `field` is only evaluated to name a payload that fails the check.
    public init(validating bytes: some Collection<UInt8>, field: @autoclosure () -> String = "payload") throws(StepRunError) {
        do {
            self.storedByteCount = try JSONValidator().validateObject(bytes)
        } catch {
            let field = field()
            throw .invalidArgument(field: field, message: "\(field) must be a JSON object: \(error)")
        }
        // The validator has checked the UTF-8, so decoding cannot repair anything.
        self.text = String(decoding: bytes, as: UTF8.self)
    }

    /// Encodes a JSON object.
    public init(_ object: JSONObject) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a [String: JSONValue] cannot fail except for non-finite doubles.
        if let data = try? encoder.encode(object) {
            self.text = String(decoding: data, as: UTF8.self)
        } else {
            self.text = "{}"
        }
        // Not refused here (the initialiser cannot throw): text jsonb cannot store (a NUL in a
        // string) is refused, naming the field, by whoever checks it next — the server always does.
        self.storedByteCount = (try? JSONValidator().validateObject(text.utf8)) ?? text.utf8.count
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// Encodes any `Encodable` value that encodes as a JSON object (a struct or a dictionary).
    public init(encoding value: some Encodable) throws(StepRunError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw .invalidArgument(field: "payload", message: "value could not be encoded as JSON: \(error)")
        }
        try self.init(validating: Array(data))
    }

    /// The empty object `{}`.
    public static let empty = JSONPayload(trustedText: "{}")

    /// The payload decoded into a dictionary of JSON values.
    public var object: JSONObject {
        get throws {
            try JSONDecoder().decode(JSONObject.self, from: Data(text.utf8))
        }
    }

    /// Decodes the payload into a `Decodable` type.
    public func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    public var description: String { text }

    /// Two payloads are equal when they hold the same JSON, whatever their spacing or key order.
    public static func == (lhs: JSONPayload, rhs: JSONPayload) -> Bool {
        if lhs.text == rhs.text { return true }
        guard let left = try? lhs.object, let right = try? rhs.object else { return false }
        return left == right
    }

    public func hash(into hasher: inout Hasher) {
        if let object = try? object {
            hasher.combine(object)
        } else {
            hasher.combine(text)
        }
    }
}
