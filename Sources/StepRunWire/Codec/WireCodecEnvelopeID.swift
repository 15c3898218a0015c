/// Reads field 1 (`id`, a varint) of a `Request` or `Response` straight from the wire bytes.
///
/// Used only when protobuf-c refused the message: the server still wants to answer the request it
/// cannot read, and the client to fail the call it belongs to. The scan walks the top-level fields
/// without trusting any length it has not checked against the bytes that are there, and stops at
/// the first thing it cannot parse; like protobuf, a repeated id takes its last value.
enum EnvelopeIDScanner {
    static func id(in bytes: UnsafeRawBufferPointer) -> UInt64? {
        var position = 0
        var id: UInt64?
        while position < bytes.count {
            guard let tag = varint(bytes, &position), tag >> 3 != 0, tag >> 3 <= UInt64(UInt32.max >> 3) else {
                return id
            }
            switch tag & 7 {
            case 0:
                guard let value = varint(bytes, &position) else { return id }
                if tag >> 3 == 1 { id = value }
            case 1:
                guard skip(8, bytes, &position) else { return id }
            case 2:
                guard let length = varint(bytes, &position), length <= UInt64(bytes.count - position) else { return id }
                position += Int(length)
            case 5:
                guard skip(4, bytes, &position) else { return id }
            default:
                // Groups (3, 4) are not used by proto3 and 6, 7 are invalid: nothing further is readable.
                return id
            }
        }
        return id
    }

    private static func skip(_ count: Int, _ bytes: UnsafeRawBufferPointer, _ position: inout Int) -> Bool {
        guard bytes.count - position >= count else { return false }
        position += count
        return true
    }

    /// A base-128 varint of at most 10 bytes; nil when truncated or over-long.
    private static func varint(_ bytes: UnsafeRawBufferPointer, _ position: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count && shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
