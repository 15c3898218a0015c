/// A plain-text table for humans: left-aligned columns two spaces apart, no trailing spaces.
///
/// Cells hold caller data (step names, payloads), so control characters are shown escaped: a step
/// named with a newline or an ANSI escape sequence must not break the layout or drive the terminal.
struct Table {
    var header: [String]?
    var rows: [[String]]

    /// A table with a header line of column names.
    init(columns: [String], rows: [[String]] = []) {
        self.header = columns
        self.rows = rows
    }

    /// Label/value lines for one record (a step run, a health report), without a header.
    init(fields: [(String, String)]) {
        self.header = nil
        self.rows = fields.map { [$0.0, $0.1] }
    }

    /// The table's text, ending with a newline (empty when there is neither header nor rows).
    var rendered: String {
        let lines = ((header.map { [$0] } ?? []) + rows).map { $0.map(Self.visible) }
        guard let columnCount = lines.map(\.count).max(), columnCount > 0 else { return "" }
        var widths = [Int](repeating: 0, count: columnCount)
        for line in lines {
            for (column, cell) in line.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var text = ""
        for line in lines {
            // Padding stops at the last non-empty cell, so lines never end in spaces of our making.
            let last = line.lastIndex { !$0.isEmpty } ?? 0
            for (column, cell) in line.enumerated() where column <= last {
                text += cell
                if column < last { text += String(repeating: " ", count: widths[column] - cell.count + 2) }
            }
            text += "\n"
        }
        return text
    }

    /// The text with control characters (C0, DEL, C1) replaced by visible escapes.
    static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where isControl(scalar):
                escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Shortens a cell to at most `limit` characters, marking the cut with "…".
    static func truncated(_ text: String, to limit: Int) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit - 1)) + "…"
    }
}
