/// Encodes values as a Postgres array literal (`{"a","b\"c",NULL}`) for a single text parameter.
///
/// Every element is double-quoted, so only `"` and `\` need escaping; this keeps multi-row
/// statements (fan-out, bulk delete) to one parameter per column and one round trip.
enum PGArrayLiteral {
    static func encode(_ elements: some Sequence<String?>) -> String {
        var literal = "{"
        var first = true
        for element in elements {
            if !first { literal.append(",") }
            first = false
            guard let element else {
                literal.append("NULL")
                continue
            }
            literal.append("\"")
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { literal.unicodeScalars.append("\\") }
                literal.unicodeScalars.append(character)
            }
            literal.append("\"")
        }
        literal.append("}")
        return literal
    }
}
