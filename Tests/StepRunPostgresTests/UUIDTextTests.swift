import Foundation
@testable import StepRunPostgres
import Testing

@Suite("UUID text")
struct UUIDTextTests {
    @Test("pgText is Foundation's form in lower case, and parses back in either case")
    func roundTrip() {
        for _ in 0..<1000 {
            let uuid = UUID()
            #expect(uuid.pgText == uuid.uuidString.lowercased())
            #expect(UUID(pgText: uuid.pgText) == uuid)
            #expect(UUID(pgText: uuid.uuidString) == uuid)
        }
    }

    @Test("anything but the canonical 36-character form is refused")
    func refusesOtherForms() {
        let good = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
        #expect(UUID(pgText: good) != nil)
        for bad in ["", String(good.dropLast()), good + "0", good.replacingOccurrences(of: "-", with: "x"),
                    "0190a1b2c3d4-7e5f-8a6b-7c8d9e0f1a2b0", "g190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2ü"] {
            #expect(UUID(pgText: bad) == nil, "\(bad)")
        }
    }
}
