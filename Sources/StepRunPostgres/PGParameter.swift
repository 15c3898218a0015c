import Foundation

/// One parameter of a prepared statement; nil (outside) is SQL NULL.
///
/// Most parameters are text, read by the type's input function. Arrays go in Postgres' binary
/// array format: its text form would need every `"` and `\` of a JSON payload escaped here and
/// then parsed back character by character by `array_in`, where the binary form is a length and
/// the element's bytes — so a multi-row statement costs the same per payload byte as a
/// single-row one, whatever the payload holds.
enum PGParameter: Sendable {
    case text(String)
    case binary([UInt8])

    /// A one-dimensional `uuid[]`.
    static func uuidArray(_ elements: some Collection<UUID>) -> PGParameter {
        var array = BinaryArray(elementType: .uuid, count: elements.count, hasNulls: false, payloadBytes: elements.count * 16)
        for element in elements {
            withUnsafeBytes(of: element.uuid) { array.append(element: $0) }
        }
        return .binary(array.bytes)
    }

    /// A one-dimensional `text[]`; nil elements are NULL.
    static func textArray(_ elements: some Collection<String?>) -> PGParameter {
        array(of: .text, elements)
    }

    /// A one-dimensional `jsonb[]` of JSON texts; nil elements are NULL.
    static func jsonbArray(_ elements: some Collection<String?>) -> PGParameter {
        array(of: .jsonb, elements)
    }

    private static func array(of type: BinaryArray.ElementType, _ elements: some Collection<String?>) -> PGParameter {
        var payloadBytes = 0
        var hasNulls = false
        for element in elements {
            if let element { payloadBytes += element.utf8.count + 1 } else { hasNulls = true }
        }
        var array = BinaryArray(elementType: type, count: elements.count, hasNulls: hasNulls, payloadBytes: payloadBytes)
        for element in elements {
            guard var element else {
                array.appendNull()
                continue
            }
            element.withUTF8 { array.append(element: UnsafeRawBufferPointer($0)) }
        }
        return .binary(array.bytes)
    }
}

/// Postgres' binary array format (`array_send` / `array_recv`), one dimension, big-endian:
/// dimensions, a has-nulls flag, the element type's OID, then for the dimension its length and
/// lower bound (1), then each element as a 32-bit length (-1 for NULL) and its binary form.
private struct BinaryArray {
    /// Built-in types' OIDs, fixed in every Postgres version (`pg_type.dat`); `array_recv` checks
    /// the one sent against the parameter's declared element type.
    enum ElementType: UInt32 {
        case text = 25
        case uuid = 2950
        case jsonb = 3802
    }

    private(set) var bytes: [UInt8] = []
    private let elementType: ElementType

    init(elementType: ElementType, count: Int, hasNulls: Bool, payloadBytes: Int) {
        self.elementType = elementType
        bytes.reserveCapacity(20 + 4 * count + payloadBytes)
        append(Int32(count == 0 ? 0 : 1))
        append(Int32(hasNulls ? 1 : 0))
        append(Int32(bitPattern: elementType.rawValue))
        if count > 0 {
            append(Int32(count))
            append(Int32(1))
        }
    }

    mutating func appendNull() {
        append(Int32(-1))
    }

    /// An element's value: a uuid's 16 bytes, a text's UTF-8, or a JSON text (which `jsonb`'s
    /// binary form prefixes with its format version, 1).
    mutating func append(element: UnsafeRawBufferPointer) {
        if elementType == .jsonb {
            append(Int32(element.count + 1))
            bytes.append(1)
        } else {
            append(Int32(element.count))
        }
        bytes.append(contentsOf: element)
    }

    private mutating func append(_ value: Int32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}
