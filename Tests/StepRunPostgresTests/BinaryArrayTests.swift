import Foundation
@testable import StepRunPostgres
import StepRunCore
import Testing
import StepRunTesting

@Suite("Binary array parameters")
struct BinaryArrayTests {
    static let texts: [String?] = [
        "plain", "", nil, "NULL", #"{"a":"b\"c"}"#, #"back\slash"#, "comma, {brace}", "ünïcödé ✓ 🎉", " spaced ", "'quote'",
    ]
    static let payloads: [String?] = [
        "{}", nil, #"{"a":"b\"c","d":[1,2.5,null,true],"e":{"f":"\\u00e9 back\\\\slash"}}"#, #"{"emoji":"🎉"}"#,
        "{\"big\":\"" + String(repeating: "x", count: 100_000) + "\"}",
    ]

    @Test("the header says one dimension, whether there are NULLs, the element type, the length and lower bound 1")
    func layout() {
        guard case .binary(let bytes) = PGParameter.textArray(["ab", nil]) else {
            Issue.record("an array parameter is binary")
            return
        }
        let int32s: [Int32] = [1, 1, 25, 2, 1, 2]
        let header = int32s.flatMap { value in withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        #expect(Array(bytes.prefix(24)) == header)
        #expect(Array(bytes.dropFirst(24)) == [UInt8(ascii: "a"), UInt8(ascii: "b"), 0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test("Postgres reads back exactly the text elements that were sent")
    func textRoundTrip() async throws {
        let rows = try await select("SELECT e FROM unnest($1::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n", .textArray(Self.texts))
        #expect((0..<rows.count).map { rows[$0, 0] } == Self.texts)
    }

    @Test("Postgres reads back the JSON values that were sent, NULLs included")
    func jsonbRoundTrip() async throws {
        let rows = try await select(
            "SELECT e = p.v, e IS NULL FROM unnest($1::jsonb[]) WITH ORDINALITY AS t(e, n) JOIN unnest($2::text[]::jsonb[]) WITH ORDINALITY AS p(v, n) USING (n) ORDER BY n",
            .jsonbArray(Self.payloads), .text(Self.textLiteral(Self.payloads)))
        #expect(rows.count == Self.payloads.count)
        for (row, payload) in Self.payloads.enumerated() {
            if payload == nil {
                #expect(rows[row, 1] == "t")
            } else {
                #expect(rows[row, 0] == "t", "element \(row) differs")
            }
        }
    }

    @Test("Postgres reads back the UUIDs that were sent")
    func uuidRoundTrip() async throws {
        let ids = (0..<5).map { _ in UUID.v7() } + [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))]
        let rows = try await select("SELECT e::text FROM unnest($1::uuid[]) WITH ORDINALITY AS t(e, n) ORDER BY n", .uuidArray(ids))
        #expect((0..<rows.count).map { rows[$0, 0] } == ids.map { $0.uuidString.lowercased() })
    }

    @Test("an empty array is an array with no dimensions")
    func emptyArray() async throws {
        let rows = try await select("SELECT cardinality($1::text[]), cardinality($2::uuid[])", .textArray([String?]()), .uuidArray([UUID]()))
        #expect(rows[0, 0] == "0" && rows[0, 1] == "0")
    }

    /// The same values as a text array literal, for Postgres to compare against.
    private static func textLiteral(_ elements: [String?]) -> String {
        let quoted = elements.map { element in
            element.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" } ?? "NULL"
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }

    private func select(_ sql: String, _ parameters: PGParameter?...) async throws -> PGRows {
        let repository = try await TestDatabase.repository()
        let name = "test_binary_array_\(abs(sql.hashValue))"
        return try await repository.pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            do throws(PGError) {
                return try connection.execute(PreparedStatement(name: name, sql: sql), parameters)
            } catch {
                throw error.storeError(context: "binary array")
            }
        }
    }
}
