import Foundation
import PackagePlugin

/// `swift package lockstep <subcommand> …`: builds the `lockstep` tool (release for `fuzz` and `bench`,
/// where debug is far slower; debug otherwise) and runs it with the arguments as given, in the package
/// directory, passing its exit status on (0 pass, 1 findings or changed verdicts, 2 bad input).
@main
struct LockstepPlugin: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let subcommand = arguments.first { !$0.hasPrefix("-") }
        let release = subcommand == "fuzz" || subcommand == "bench"
        let build = try packageManager.build(.product("lockstep"),
                                             parameters: .init(configuration: release ? .release : .debug, logging: .concise))
        guard build.succeeded,
              let tool = build.builtArtifacts.first(where: { $0.kind == .executable && $0.url.lastPathComponent == "lockstep" }) else {
            Diagnostics.error("could not build the lockstep tool:\n\(build.logText)")
            exit(2)
        }
        let process = Process()
        process.executableURL = tool.url
        process.arguments = arguments
        process.currentDirectoryURL = context.package.directoryURL
        try process.run()
        process.waitUntilExit()
        // The tool's own status, so CI can tell findings (1) from bad input (2).
        exit(process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus)
    }
}
