import Foundation

/// One parameter of a prepared statement; nil (outside) is SQL NULL.
///
/// Most parameters are text, read by the type's input function. Arrays go in Postgres' binary
/// array format: its text form would need every `"` and `\` of a JSON payload escaped here and
/// then parsed back character by character by `array_in`, where the binary form is a length and
/// the element's bytes, so what a payload holds no longer matters. (Size still does: copying
/// large payloads into one array costs more than the statement it saves — see
/// `StoreOperations.maxSharedPayloadBytes`.) Lengths are 32-bit, which `max-frame-bytes`' upper
/// bound (1 GiB) keeps every payload well within.
enum PGParameter: Sendable {
    case text(String)
    case binary([UInt8])

    /// Calls `body` with `parameters` as `PQexecPrepared` and `PQsendQueryPrepared` take them:
    /// values (NULL for SQL NULL) and — only when some are binary — their lengths and formats (1
    /// for binary; libpq reads text up to its NUL).
    ///
    /// Each value lends its own bytes (`withCString`, `withUnsafeBufferPointer`, nested once per
    /// parameter) rather than being copied: a claim with a 1 MiB input had cost a 1 MiB
    /// allocation, its page faults and a copy, only for libpq to copy it again into its send buffer.
    static func lend<Result>(
        _ parameters: [PGParameter?],
        _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> Result
    ) -> Result {
        var values = [UnsafePointer<CChar>?](repeating: nil, count: parameters.count)
        let anyBinary = parameters.contains { if case .binary? = $0 { true } else { false } }
        var lengths = [Int32](repeating: 0, count: anyBinary ? parameters.count : 0)
        var formats = [Int32](repeating: 0, count: anyBinary ? parameters.count : 0)
        func bind(from index: Int) -> Result {
            guard index < parameters.count else {
                return values.withUnsafeBufferPointer { values in
                    guard anyBinary else { return body(values.baseAddress, nil, nil) }
                    return lengths.withUnsafeBufferPointer { lengths in
                        formats.withUnsafeBufferPointer { formats in
                            body(values.baseAddress, lengths.baseAddress, formats.baseAddress)
                        }
                    }
                }
            }
            switch parameters[index] {
            case nil:
                return bind(from: index + 1)
            case .text(let text)?:
                return text.withCString { pointer in
                    values[index] = pointer
                    return bind(from: index + 1)
                }
            case .binary(let bytes)?:
                // A binary array is never empty (its header alone is 12 bytes), so the buffer has
                // an address: a NULL one would mean SQL NULL to libpq.
                precondition(!bytes.isEmpty, "a binary parameter needs at least one byte")
                return bytes.withUnsafeBufferPointer { buffer in
                    values[index] = UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self)
                    lengths[index] = Int32(buffer.count)
                    formats[index] = 1
                    return bind(from: index + 1)
                }
            }
        }
        return bind(from: 0)
    }

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
