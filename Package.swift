// swift-tools-version:6.0
// Lockstep: a simulated NT memory manager (the engine) and the verification framework around it.
// Layers, bottom to top; a target imports only the targets below it:
//   CZlib, MemoryManager (the engine; imports nothing of ours), LockstepPrograms (the call vocabulary)
//   → ReferenceModel (imports only the vocabulary) → Lockstep (runner, fuzzer, shrinker, corpus)
//   → the `lockstep` CLI. Driver-under-test mode sits beside the CLI: DriverHarness (imports Lockstep; the
//   engine never imports it) and the example drivers built on it.
import PackageDescription

let package = Package(
    name: "Lockstep",
    products: [
        .library(name: "MemoryManager", targets: ["MemoryManager"]),
        .library(name: "LockstepPrograms", targets: ["LockstepPrograms"]),
        .library(name: "ReferenceModel", targets: ["ReferenceModel"]),
        .library(name: "Lockstep", targets: ["Lockstep"]),
        // For packages that test their own drivers against the engine (docs/DRIVER_HARNESS.md).
        .library(name: "DriverHarness", targets: ["DriverHarness"]),
        .executable(name: "lockstep", targets: ["lockstep"]),
        .plugin(name: "LockstepPlugin", targets: ["LockstepPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev); corpora are gzip files written through it.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The engine: a deterministic simulation of NT's address-mapping and MDL routines.
        // Dependency-free by design.
        .target(name: "MemoryManager"),
        // Programs: the call vocabulary (the one contract between engine adapter, reference model,
        // generator and encoder), the Program type and its text format. Imports nothing of ours.
        .target(name: "LockstepPrograms"),
        // The independent reference model: written from the spec and docs/ENGINE_CONVENTIONS.md, never
        // from the engine; shares only the program vocabulary.
        .target(name: "ReferenceModel", dependencies: ["LockstepPrograms"]),
        // The framework, one folder per concern: Runner/ (engine adapter, lockstep runner, invariants,
        // verdicts), Fuzzer/ (generation, fault plans, mutation, campaigns), Shrinker/, Corpus/.
        .target(name: "Lockstep", dependencies: ["CZlib", "MemoryManager", "LockstepPrograms", "ReferenceModel"]),
        // Driver-under-test mode: a driver written against the engine's kernel API, driven by request
        // programs and fault plans, checked against Driver Verifier's MDL rules.
        .target(name: "DriverHarness", dependencies: ["Lockstep", "LockstepPrograms", "MemoryManager"]),
        // Example drivers for the harness: one correct, several with one classic bug each.
        .target(name: "ExampleDrivers", dependencies: ["DriverHarness", "MemoryManager"], path: "Examples/ExampleDrivers"),
        // The command-line front end.
        .executableTarget(
            name: "lockstep",
            dependencies: ["Lockstep", "LockstepPrograms", "MemoryManager", "DriverHarness", "ExampleDrivers",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/LockstepCLI"
        ),

        // The libFuzzer entry point (LLVMFuzzerTestOneInput) and its executable; see docs/LIBFUZZER.md.
        .target(name: "LockstepFuzzEntry", dependencies: ["Lockstep", "LockstepPrograms", "MemoryManager"]),
        .executableTarget(name: "LockstepLibFuzzer", dependencies: ["LockstepFuzzEntry"]),

        // `swift package lockstep …`: the CLI as a SwiftPM command plugin.
        .plugin(
            name: "LockstepPlugin",
            capability: .command(
                intent: .custom(verb: "lockstep", description: "Run the lockstep CLI: fuzz, systematic, run, replay, minimize, show, merge, bench, textfuzz.")
            ),
            // No declared write permission, so `swift package lockstep --help|replay|show` need no flag.
            // Subcommands that write corpora take `--allow-writing-to-package-directory` where plugins
            // are sandboxed (macOS); see Plugins/README.md.
            dependencies: ["lockstep"],
            path: "Plugins/LockstepPlugin"
        ),

        // Release-mode throughput of the bare engine (see docs/BENCHMARKS.md).
        .executableTarget(
            name: "engine-throughput",
            dependencies: ["MemoryManager"],
            path: "Benchmarks/EngineThroughput"
        ),

        .testTarget(name: "CZlibTests", dependencies: ["CZlib", "Lockstep"]),
        .testTarget(name: "MemoryManagerTests", dependencies: ["MemoryManager"]),
        .testTarget(name: "LockstepProgramsTests", dependencies: ["LockstepPrograms"]),
        .testTarget(name: "ReferenceModelTests", dependencies: ["ReferenceModel", "LockstepPrograms"]),
        .testTarget(name: "LockstepTests", dependencies: ["Lockstep", "LockstepPrograms", "MemoryManager"], exclude: ["Programs"]),
        .testTarget(name: "DriverHarnessTests", dependencies: ["DriverHarness", "ExampleDrivers", "Lockstep", "LockstepPrograms", "MemoryManager"]),
    ],
    swiftLanguageModes: [.v6]
)
