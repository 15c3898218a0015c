@testable import StepRunPostgres
import StepRunCore
import Testing

@Suite("Array literals")
struct ArrayLiteralTests {
    static let samples: [String?] = [
        "plain", "", nil, "NULL", #"{"a":"b\"c"}"#, #"back\slash"#, "comma, {brace}", "ünïcödé ✓ 🎉", " spaced ", "'quote'",
    ]

    @Test("quotes every element and escapes only quote and backslash")
    func encoding() {
        #expect(PGArrayLiteral.encode([String?]()) == "{}")
        #expect(PGArrayLiteral.encode(["a", nil, #"x"y\z"#]) == #"{"a",NULL,"x\"y\\z"}"#)
    }

    @Test("Postgres reads back exactly the elements that were encoded")
    func roundTripThroughPostgres() async throws {
        let repository = try await TestDatabase.repository()
        let literal = PGArrayLiteral.encode(Self.samples)
        let rows = try await repository.pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            do throws(PGError) {
                return try connection.execute(
                    PreparedStatement(name: "test_array_literal", sql: "SELECT e FROM unnest($1::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n"),
                    [literal])
            } catch {
                throw error.storeError(context: "array literal")
            }
        }
        #expect((0..<rows.count).map { rows[$0, 0] } == Self.samples)
    }
}
