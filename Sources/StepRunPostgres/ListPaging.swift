import Foundation
import StepRunCore

/// Parameters and rows of the paged list statements (`ListSQL`).
enum ListPaging {
    /// The parameters of a list request's statement: $1 scope, $2 candidate limit, $3 byte
    /// budget, then the cursor — three values (time, inserted_at, id) for the completion and
    /// compensation orders, one for the others; NULLs on the first page.
    static func parameters(for request: StoreRequest) -> [PGParameter?] {
        let (scope, page, cursorWidth): (UUID, PageRequest, Int)
        switch request {
        case .completedSteps(let id, let p), .completedOutputs(let id, let p), .completedStepRunsForCompensation(let id, let p):
            (scope, page, cursorWidth) = (id, p, 3)
        case .stepStatuses(let id, let p), .listAttempts(let id, let p):
            (scope, page, cursorWidth) = (id, p, 1)
        default:
            preconditionFailure("not a list request")
        }
        var parameters: [PGParameter?] = [
            .text(scope.pgText), page.candidateLimit.map { .text(String($0)) }, page.maxBytes.map { .text(String($0)) },
        ]
        switch page.after?.cursor {
        case .timeKey(let time, let insertedAt, let id)?:
            parameters += [.text(String(time)), .text(String(insertedAt)), .text(id.pgText)]
        case .step(let name)?:
            parameters.append(.text(name))
        case .attemptNumber(let number)?:
            parameters.append(.text(String(number)))
        case nil:
            parameters += Array(repeating: nil, count: cursorWidth)
        }
        return parameters
    }

    /// The page a list statement's rows make: the rows marked 'ok', up to the page size; a row
    /// after them means the list goes on, and the last row of the page becomes the next token.
    static func decode(_ request: StoreRequest, _ rows: PGRows) throws(StepRunError) -> StoreResult {
        guard let page = request.page else { preconditionFailure("not a list request") }
        if case .listAttempts(let stepRunID, _) = request, rows.count > 0, rows[0, 0] == nil {
            throw .notFound("step run \(stepRunID.uuidString.lowercased()) does not exist")
        }
        let most = page.candidateLimit.map { $0 - 1 } ?? Int.max
        var count = 0
        while count < rows.count, count < most, rows[count, 0] == "ok" { count += 1 }
        let more = count < rows.count
        if more && !page.paged {
            let budget = page.maxBytes.map { " (\($0) bytes of elements)" } ?? ""
            throw .pageRequired("""
                page_required: \(request.operationName) of this run does not fit one response\(budget); \
                page it: send protocol_version 2 in Hello (or set page_size or page_token) and follow next_page_token (docs/PROTOCOL.md §6)
                """)
        }
        let last = count - 1
        switch request {
        case .completedSteps(let id, _):
            return .steps(try (0..<count).map { (row) throws(StepRunError) in try rows.text(row, 4) },
                          next: more ? try timeToken(.completedSteps, id, rows, last) : nil)
        case .completedOutputs(let id, _):
            return .outputs((0..<count).map { rows.payload($0, 4) ?? .empty },
                            next: more ? try timeToken(.completedOutputs, id, rows, last) : nil)
        case .completedStepRunsForCompensation(let id, _):
            return .stepRuns(try (0..<count).map { (row) throws(StepRunError) in try rows.stepRun(row: row, from: 4) },
                             next: more ? try timeToken(.compensation, id, rows, last) : nil)
        case .stepStatuses(let id, _):
            var statuses: [String: StepStatus] = [:]
            statuses.reserveCapacity(count)
            for row in 0..<count { statuses[try rows.text(row, 2)] = try rows.status(row, 3) }
            return .statuses(statuses, next: more ? PageToken(list: .stepStatuses, scope: id, cursor: .step(try rows.text(last, 1))) : nil)
        case .listAttempts(let id, _):
            return .attempts(try (0..<count).map { (row) throws(StepRunError) in try rows.attempt(row: row, from: 2) },
                             next: more ? PageToken(list: .attempts, scope: id, cursor: .attemptNumber(Int64(try rows.int(last, 1)))) : nil)
        default:
            preconditionFailure("not a list request")
        }
    }

    private static func timeToken(_ list: PagedList, _ scope: UUID, _ rows: PGRows, _ row: Int) throws(StepRunError) -> PageToken {
        guard let time = Int64(try rows.text(row, 1)), let insertedAt = Int64(try rows.text(row, 2)) else {
            throw .internal("unexpected value from the database: a list cursor is not a timestamp")
        }
        return PageToken(list: list, scope: scope, cursor: .timeKey(time: time, insertedAt: insertedAt, id: try rows.uuid(row, 3)))
    }
}
