/// Encodes values as a Postgres array literal (`{"a","b\"c",NULL}`) for a single text parameter.
///
/// Every element is double-quoted, so only `"` and `\` need escaping; this keeps multi-row
/// statements (fan-out, bulk delete, group commit batches) to one parameter per column and one
/// round trip. Works on UTF-8 bytes and copies the runs between escapes whole: JSON payloads are
/// full of quotes, and they pass through here on the hot path.
enum PGArrayLiteral {
    static func encode(_ elements: some Collection<String?>) -> String {
        var capacity = 2
        for element in elements { capacity += (element?.utf8.count ?? 4) + 3 }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(capacity + capacity / 8)
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for element in elements {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            guard var element else {
                bytes.append(contentsOf: "NULL".utf8)
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            element.withUTF8 { utf8 in
                var runStart = 0
                for index in utf8.indices where utf8[index] == UInt8(ascii: "\"") || utf8[index] == UInt8(ascii: "\\") {
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                    bytes.append(UInt8(ascii: "\\"))
                    runStart = index
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
