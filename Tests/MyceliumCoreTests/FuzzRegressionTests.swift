import Foundation
import MyceliumCore
import MyceliumFuzz
import MyceliumTesting
import Testing

/// Every input a fuzz run ever crashed on (Tests/Fuzz/crashers, written by scripts/fuzz.sh) and
/// every protocol vector, through every fuzz target: none may trap. The long runs are
/// `make fuzz`; `make test` runs a short one.
@Suite struct FuzzRegressionTests {
    static let crashers: URL = Vectors.fixturesDirectory.deletingLastPathComponent().appendingPathComponent("Fuzz/crashers")

    static func crasherFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: crashers.path)) ?? []).sorted()
    }

    @Test("the crashers found so far (the RouteRequest with generation 255 first) run without a trap")
    func crashersReplay() throws {
        let files = Self.crasherFiles()
        #expect(files.contains("route-request-generation-255"))
        for name in files {
            let bytes = [UInt8](try Data(contentsOf: Self.crashers.appendingPathComponent(name)))
            FuzzTarget.run(bytes)
        }
    }

    @Test("every hex field of every vector, as input to every target")
    func vectorsThroughEveryTarget() {
        var inputs: [[UInt8]] = []
        for vector in Vectors.mycelium {
            for (key, value) in vector.object where key.hasSuffix("_hex") {
                if let bytes = value.hexBytes { inputs.append(bytes) }
            }
        }
        #expect(inputs.count > 40)
        for input in inputs {
            for target in FuzzTarget.allCases { target.run(input) }
        }
    }

    @Test("truncations and single-byte mutations of every frame vector, through the decoder and the router")
    func mutatedFrames() {
        let frames = Vectors.mycelium.compactMap { $0["frame_hex"].hexBytes }
        var rng = SeededRandom(seed: 13)
        for frame in frames {
            for cut in 0...frame.count { FuzzTarget.frames.run(Array(frame.prefix(cut))) }
            for _ in 0..<200 {
                var mutated = frame
                mutated[Int(rng.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: rng.next())
                FuzzTarget.frames.run(mutated)
                FuzzTarget.router.run(mutated + mutated)
            }
        }
    }
}
