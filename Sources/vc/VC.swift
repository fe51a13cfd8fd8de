// `vc`: VisionCore's command-line tool.
import ArgumentParser
import CBLAS
import VisionCore

@main
struct VC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vc",
        abstract: "VisionCore: CPU deep learning for computer vision.",
        subcommands: [Classify.self, Demo.self, DetectFaces.self, Train.self, TrainFaces.self, RelabelMaps.self, Info.self, Models.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the library's build and runtime configuration.")

    func run() throws {
        print("VisionCore 0.1.0")
        print("threads: \(Threading.threadCount)")
        if let core = openblas_get_corename() { print("OpenBLAS core: \(String(cString: core))") }
        if let config = openblas_get_config() { print("OpenBLAS config: \(String(cString: config))") }
        #if VC_FMA
        print("Swift kernels: built with FMA code generation (VISIONCORE_MARCH)")
        #else
        print("Swift kernels: portable baseline build")
        #endif
    }
}
