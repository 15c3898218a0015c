#if !FUZZING
import Foundation

/// Without libFuzzer (`swift build`): `--write-corpus DIR` writes the seed corpus; any other
/// arguments are input files, each run once through the harness (to replay a crasher).
@main
struct FuzzCommand {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--write-corpus", arguments.count == 2 {
            try Corpus.write(to: arguments[1])
            print("wrote \(Corpus.seeds().count) seeds to \(arguments[1])")
            return
        }
        guard !arguments.isEmpty else {
            print("usage: steprun-fuzz --write-corpus DIR | FILE...   (fuzzing itself: scripts/fuzz)")
            return
        }
        for path in arguments {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { raw in
                FuzzHarness.run(raw.bindMemory(to: UInt8.self))
            }
            print("ok \(path)")
        }
    }
}
#endif

#if FUZZING
/// libFuzzer's driver, linked in by `-sanitize=fuzzer`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// SwiftPM links an executable's entry point under this name; in fuzz builds it hands over to libFuzzer.
@_cdecl("steprun_fuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
#endif
