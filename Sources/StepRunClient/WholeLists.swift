import StepRunCore

// A whole-list request (`PageRequest.whole`) through the client gets what it gets from the
// in-process repository: the whole list or an error. A version 2 connection is always served in
// pages, so the client follows them itself, all under the caller's one deadline.

extension StepRunClient {
    /// Every page of `request` (a list request with `paged == false`), merged into one result.
    func performWhole(_ request: StoreRequest, deadline: ContinuousClock.Instant) async throws -> StoreResult {
        var merged: StoreResult?
        var token: PageToken?
        repeat {
            let result = try await performOne(request.page(after: token), deadline: deadline)
            guard let whole = merged.map({ $0.appending(result) }) ?? result else {
                throw StepRunError.internal("unexpected result \(result) for \(request.operationName)")
            }
            merged = whole
            token = result.nextPage
        } while token != nil
        return merged!
    }
}

extension StoreRequest {
    /// This list request, paged, continuing after `token` (the server fills each page).
    fileprivate func page(after token: PageToken?) -> StoreRequest {
        let page = PageRequest(after: token)
        switch self {
        case .completedSteps(let id, _): return .completedSteps(runID: id, page: page)
        case .completedOutputs(let id, _): return .completedOutputs(runID: id, page: page)
        case .completedStepRunsForCompensation(let id, _): return .completedStepRunsForCompensation(runID: id, page: page)
        case .stepStatuses(let id, _): return .stepStatuses(runID: id, page: page)
        case .listAttempts(let id, _): return .listAttempts(stepRunID: id, page: page)
        default: return self
        }
    }
}

extension StoreResult {
    /// The token of the page after this one; nil on the last page (or for a result that is no list).
    fileprivate var nextPage: PageToken? {
        switch self {
        case .steps(_, let next), .outputs(_, let next), .stepRuns(_, let next), .statuses(_, let next), .attempts(_, let next):
            next
        default:
            nil
        }
    }

    /// This list so far followed by `page`'s elements, with `page`'s next token; nil when `page`
    /// is not a page of the same kind of list.
    fileprivate func appending(_ page: StoreResult) -> StoreResult? {
        switch (self, page) {
        case (.steps(let a, _), .steps(let b, let next)): .steps(a + b, next: next)
        case (.outputs(let a, _), .outputs(let b, let next)): .outputs(a + b, next: next)
        case (.stepRuns(let a, _), .stepRuns(let b, let next)): .stepRuns(a + b, next: next)
        case (.statuses(let a, _), .statuses(let b, let next)): .statuses(a.merging(b) { $1 }, next: next)
        case (.attempts(let a, _), .attempts(let b, let next)): .attempts(a + b, next: next)
        default: nil
        }
    }
}
