import ArgumentParser
import ConveyorCLIConfig
import Foundation

/// Every option from the environment (`CONVEYOR_<LONG_NAME>`) and a config file (`--config FILE`
/// or `CONVEYOR_CONFIG`), put on the command line before the argument parser reads it, so that
/// each value is checked as if typed; see ``Layering`` and docs/CLI.md.
enum ConfigLayer {
    /// The program's commands as its argument parser describes them (`--experimental-dump-help`).
    static func layering() -> Layering {
        let root: CommandSpec
        do {
            root = try CommandTree.decode(Conveyor._dumpHelp())
        } catch {
            fatalError("the argument parser's description of conveyor cannot be read: \(error)")
        }
        var layering = Layering(root: root)
        // A supervised child (`--process-index`, given by its supervisor) is one process: taking
        // `processes` from the environment or the file would make it a supervisor too.
        layering.notFilled = [.init(command: ["consumer"], whenGiven: "process-index", keys: ["processes"])]
        return layering
    }

    static func readFile(_ origin: Layering.FileOrigin) throws(ConfigError) -> String {
        guard let data = FileManager.default.contents(atPath: origin.path) else {
            let reason = FileManager.default.fileExists(atPath: origin.path) ? "it cannot be read" : "no such file"
            throw ConfigError("cannot read the config file \(origin.path) (named by \(origin.namedBy)): \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("the config file \(origin.path) (named by \(origin.namedBy)) is not UTF-8 text")
        }
        return text
    }

    /// `Conveyor.main(nil)`, with the environment's and the config file's options put on the
    /// command line first.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        guard Layering.mayApply(to: arguments, environment: environment) else {
            await run(arguments)
            return
        }
        let resolution: Layering.Resolution
        do {
            resolution = try layering().resolve(arguments, environment: environment, readFile: readFile)
        } catch {
            printError("error: \(error.message)")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        for warning in resolution.warnings { printError("warning: \(warning)") }
        let injected = resolution.injected
        guard !injected.isEmpty else {
            await run(resolution.arguments)
            return
        }
        await run(resolution.arguments) { error in explain(error, injected: injected) }
    }

    /// Parses and runs `arguments`, as `Conveyor.main` does, but says a failure in the CLI's one
    /// style (`error: …`, lower case, as every runtime error of the commands); a parse error goes
    /// to `parseFailed`.
    static func run(_ arguments: [String], parseFailed: (any Error) -> Never = { fail($0) }) async {
        var command: any ParsableCommand
        do {
            command = try Conveyor.parseAsRoot(arguments)
        } catch {
            parseFailed(error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            fail(error)
        }
    }

    /// Exits for `error`: help and `--version` as the parser prints them; anything else as
    /// `error: …` with the parser's usage hint, and its exit status.
    static func fail(_ error: any Error) -> Never {
        let code = Conveyor.exitCode(for: error)
        guard code != .success else { Conveyor.exit(withError: error) }
        let message = Conveyor.fullMessage(for: error)
        // An ExitCode thrown after the command said why has no message: print nothing.
        if !message.isEmpty {
            printError(message.hasPrefix("Error: ") ? "error: " + message.dropFirst("Error: ".count) : message)
        }
        Foundation.exit(code.rawValue)
    }

    /// Exits for a parse error, naming the environment variable or the file line of each value
    /// from there that the message is about: `CONVEYOR_BROKER=5555 (from the environment): --broker
    /// must look like tcp://HOST:PORT …`.
    static func explain(_ error: any Error, injected: [Layering.Setting]) -> Never {
        let code = Conveyor.exitCode(for: error)
        let message = Conveyor.fullMessage(for: error)
        let culprits = injected.filter { setting in
            var spellings = [setting.option.spelling]
            if case .inversion(let negative) = setting.option.kind { spellings.append(negative) }
            return spellings.contains { mentions(message, $0) }
        }
        guard code != .success, !culprits.isEmpty else { fail(error) }
        let sources = culprits.compactMap(\.given).joined(separator: "; ")
        let label = "Error: "
        let explained = message.hasPrefix(label) ? "error: " + sources + ": " + message.dropFirst(label.count) : sources + ": " + message
        printError(explained)
        Foundation.exit(code.rawValue)
    }

    /// Whether `text` names `spelling` as a whole word (`--broker`, not `--broker-key`).
    static func mentions(_ text: String, _ spelling: String) -> Bool {
        var searchFrom = text.startIndex
        while let range = text.range(of: spelling, range: searchFrom..<text.endIndex) {
            let next = range.upperBound < text.endIndex ? text[range.upperBound] : " "
            if !(next.isLetter || next.isNumber || next == "-" || next == "_") { return true }
            searchFrom = range.upperBound
        }
        return false
    }
}
