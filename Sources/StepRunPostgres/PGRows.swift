/// The rows of one result, copied out of libpq so the `PGresult` can be freed at once.
struct PGRows: Sendable {
    var columnCount: Int
    /// Row-major text values; nil is SQL NULL.
    var values: [String?]
    var count: Int { columnCount == 0 ? 0 : values.count / columnCount }

    subscript(row: Int, column: Int) -> String? {
        values[row * columnCount + column]
    }

    /// Splits the rows of a batched statement by the 1-based call ordinal in column `column`:
    /// `count` results, each shaped like the single statement's (the ordinal column removed).
    func split(byOrdinalIn column: Int, count: Int) -> [PGRows] {
        var parts = Array(repeating: [String?](), count: count)
        for row in 0..<self.count {
            guard let text = self[row, column], let ordinal = Int(text), ordinal >= 1, ordinal <= count else { continue }
            for index in 0..<columnCount where index != column {
                parts[ordinal - 1].append(self[row, index])
            }
        }
        return parts.map { PGRows(columnCount: columnCount - 1, values: $0) }
    }
}
