import Testing
@testable import VisionCore

/// The README's Swift tour, run as written (with the repository-relative image path resolved), so the
/// documentation cannot drift from the API.
@Suite struct ReadmeTourTests {
    static let repositoryRoot: String = {
        var dir = Fixture.directory
        for _ in 0..<3 { dir = String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)]) }
        return dir
    }()

    @Test func swiftTourRuns() throws {
        let image = try loadImage(path: "\(Self.repositoryRoot)/data/images/chelsea.png")
        let x = try imageToTensor(image, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]).unsqueeze(axis: 0)
        var rng = RandomGenerator(seed: 0)
        let w = try Tensor.normal([16, 3, 3, 3], std: 0.1, rng: &rng)
        let y = try maxPool2d(try relu(try conv2d(x, weight: w, padding: (1, 1))), kernelSize: (2, 2))
        #expect(y.shape == [1, 16, 150, 225])
    }
}
