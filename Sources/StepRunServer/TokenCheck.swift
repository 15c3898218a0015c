/// Compares a presented token with the expected one in time that depends only on their lengths,
/// so response timing reveals nothing about how much of a guess was right.
enum TokenCheck {
    static func matches(_ presented: String?, expected: String) -> Bool {
        let given = Array((presented ?? "").utf8)
        let wanted = Array(expected.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for index in 0..<wanted.count {
            let byte = index < given.count ? given[index] : 0
            difference |= byte ^ wanted[index]
        }
        return difference == 0 && !wanted.isEmpty
    }
}
