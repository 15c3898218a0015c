import StepRunCore
import Testing

@testable import StepRunWire

/// `StoreOperation` is the one table of operations, and the codec finds each operation's message
/// by the table's field number in whichever message carries it: these tests hold the table, the
/// proto and the shared numbering to each other, so a new operation added to one and not the
/// other fails here rather than on the wire.
struct OperationTableTests {
    /// Field numbers the proto reserves for calls and results (docs/PROTOCOL.md).
    static let callNumbers: ClosedRange<UInt32> = 10...199

    @Test(arguments: StoreOperation.allCases)
    func everyOperationIsTheRequestMemberOfItsNumberAndName(_ operation: StoreOperation) throws {
        let member = try #require(OneofCarrier.request.member(operation.fieldNumber), "Request.call has no member \(operation.fieldNumber)")
        #expect(member.name == operation.name)
    }

    @Test(arguments: StoreOperation.allCases)
    func exactlyTheTransactionalWritesAreTransactionOperationsOfTheSameMessage(_ operation: StoreOperation) {
        let inTransaction = OneofCarrier.transactionOperation.member(operation.fieldNumber)
        if operation.isTransactional {
            #expect(inTransaction?.name == operation.name)
            #expect(inTransaction?.type == OneofCarrier.request.member(operation.fieldNumber)?.type)
        } else {
            #expect(inTransaction == nil, "\(operation.name) is a TransactionOperation member")
        }
    }

    @Test func everyStoreCallOfTheProtoIsInTheTable() {
        for number in Self.callNumbers {
            guard let member = OneofCarrier.request.member(number), member.name != "hello", member.name != "health" else { continue }
            #expect(StoreOperation(fieldNumber: number)?.name == member.name, "Request.call member \(number) \(member.name)")
        }
    }

    @Test func everyTransactionResultIsTheResponseResultOfTheSameNumber() {
        for number in Self.callNumbers {
            guard let member = OneofCarrier.transactionOperationResult.member(number) else { continue }
            let inResponse = OneofCarrier.response.member(number)
            #expect(inResponse?.name == member.name && inResponse?.type == member.type, "TransactionOperationResult member \(number)")
        }
    }

    /// The reads and the transactional writes as the contract lists them (SPEC.md).
    @Test func theTableSaysWhichOperationsReadAndWhichMayRunInATransaction() {
        #expect(StoreOperation.allCases.count == 25)
        #expect(Set(StoreOperation.allCases.filter(\.isReadOnly)) == [
            .getStepRun, .completedSteps, .completedOutputs, .completedStepRunsForCompensation, .stepStatuses,
            .attemptCount, .latestAttempt, .listAttempts,
        ])
        #expect(Set(StoreOperation.allCases.filter { $0.access == .write }) == [.purgeRun, .transaction])
        #expect(Set(StoreOperation.allCases.filter(\.isTransactional)).count == 15)
    }
}
