#if canImport(Glibc)
import Glibc
#endif
import VisionCore

/// The random draws of the S3FD augmentations, in the order the official `utils/augmentations.py` makes them.
/// Both numpy's and Python's `random` draws go through it: `np.random.uniform(a, b)` and `random.uniform(a, b)`
/// are `uniform(a, b)` (a + (b - a) * u), `np.random.randint(a, b)` and `random.choice(seq)` are `randint(a, b)`
/// (an integer in [a, b)). A replaying source (the tests') makes the Swift code follow the official draws.
public protocol S3FDRandomSource {
    mutating func uniform(_ low: Double, _ high: Double) -> Double
    mutating func randint(_ low: Int, _ high: Int) -> Int
}

/// The default source: a seeded `RandomGenerator`.
public struct S3FDRandom: S3FDRandomSource, Sendable {
    public var generator: RandomGenerator
    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * generator.nextDouble() }
    public mutating func randint(_ low: Int, _ high: Int) -> Int {
        guard high > low else { return low }
        return min(low + Int(generator.nextDouble() * Double(high - low)), high - 1)
    }
}

/// A face box normalized to the image (x1, y1, x2, y2 in [0, 1] for a box inside it) with its class label.
public struct S3FDBox: Sendable, Equatable {
    public var label: Int
    public var x1: Double, y1: Double, x2: Double, y2: Double
    public init(label: Int = 1, x1: Double, y1: Double, x2: Double, y2: Double) {
        (self.label, self.x1, self.y1, self.x2, self.y2) = (label, x1, y1, x2, y2)
    }

    /// The box in the mirrored image: x1 = 1 - x2, x2 = 1 - x1.
    public func flippedHorizontally() -> S3FDBox { S3FDBox(label: label, x1: 1 - x2, y1: y1, x2: 1 - x1, y2: y2) }
}

/// The settings of EXTD's `data/config.py` that the training augmentation reads. Expansion (`apply_expand`) is
/// off in EXTD and not implemented.
public struct S3FDAugmentationConfig: Sendable {
    public var applyDistort = true
    public var brightnessProb = 0.5, brightnessDelta = 0.125
    public var contrastProb = 0.5, contrastDelta = 0.5
    public var saturationProb = 0.5, saturationDelta = 0.5
    public var hueProb = 0.5, hueDelta = 18.0
    /// Data-anchor-sampling is used when a uniform draw exceeds this (and `anchorSampling` is on).
    public var dataAnchorSamplingProb = 0.5
    public var anchorSampling = true
    /// Output size (the network input): 640 x 640 in EXTD.
    public var resizeWidth = 640, resizeHeight = 640
    /// Faces smaller than this (pixels, as area min * min) are dropped from crops.
    public var minFaceSize = 6.0
    public var filterMinFace = true
    /// BGR means subtracted from the network input.
    public var meanBGR: [Float] = [104, 117, 123]
    public init() {}
}

/// What one `S3FDAugmentation.apply` did (for tests and logging).
public struct S3FDAugmentationTrace: Sendable, Equatable {
    public enum Path: Sendable, Equatable { case anchorSampling, ssdCrop, ssdNoCrop }
    public var path: Path = .ssdNoCrop
    /// cv2 interpolation of the anchor-sampling rescale, its ratio and the rescaled size.
    public var anchorInterpolation: CVInterpolation? = nil
    public var anchorRatio: Double? = nil
    public var anchorResized: (Int, Int)? = nil
    /// The image after distortion (before cropping), the cropped image before the final resize.
    public var distorted: S3FDImage? = nil
    public var cropped: S3FDImage? = nil
    public var resample: PILResample = .bilinear
    public var mirrored = false

    public static func == (a: Self, b: Self) -> Bool {
        a.path == b.path && a.anchorInterpolation == b.anchorInterpolation && a.anchorRatio == b.anchorRatio
            && a.anchorResized?.0 == b.anchorResized?.0 && a.anchorResized?.1 == b.anchorResized?.1
            && a.resample == b.resample && a.mirrored == b.mirrored
    }
}

/// The result: the network input (float32 [3, H, W], RGB minus the means), the image before the mean
/// subtraction, and the boxes in it.
public struct S3FDSample: Sendable {
    public var input: Tensor
    public var image: S3FDImage
    public var boxes: [S3FDBox]
    public var trace: S3FDAugmentationTrace
}

/// S3FD's training augmentation as EXTD uses it (`utils/augmentations.py` `preprocess(img, labels, 'train')`):
/// photometric distortion (PIL ImageEnhance brightness / contrast / colour and an HSV hue shift), then with
/// probability 1/2 data-anchor-sampling (a face's size is moved to a random nearby anchor scale by cv2.resize, then
/// a 640 x 640 window around it is cut, padded with the mean), otherwise the SSD-style random square crops that
/// must contain a whole face; a resize to 640 x 640 with a random PIL filter; a horizontal flip with probability
/// 1/2; BGR-mean subtraction. Boxes are projected through every step; faces under the minimum size are dropped.
///
/// Boxes are not clipped by data-anchor-sampling (as in the official code): a kept face has its centre inside the
/// crop but may extend past it, so coordinates can leave [0, 1]. The SSD crops clip to [0, 1].
public struct S3FDAugmentation: Sendable {
    public var config: S3FDAugmentationConfig
    public static let anchorScales: [Double] = [16, 32, 64, 128, 256, 512]

    public init(config: S3FDAugmentationConfig = S3FDAugmentationConfig()) { self.config = config }

    /// Augments `image` with `boxes` (normalized to it). Errors: no boxes (the official data-anchor-sampling
    /// cannot run without a face; the dataset never passes such images), a box that is not finite or has
    /// x2 < x1 or y2 < y1 (zero-area boxes are accepted and dropped by the crops' size filter), a crop that
    /// comes out empty, or bad config values.
    public func apply<R: S3FDRandomSource>(_ image: S3FDImage, boxes: [S3FDBox], random: inout R) throws -> S3FDSample {
        guard !boxes.isEmpty else {
            throw VisionError.invalidArgument("S3FD augmentation: the image has no face boxes; training samples need at least one")
        }
        for (i, b) in boxes.enumerated() {
            guard b.x1.isFinite, b.y1.isFinite, b.x2.isFinite, b.y2.isFinite, b.x2 >= b.x1, b.y2 >= b.y1 else {
                throw VisionError.invalidArgument("S3FD augmentation: box \(i) (\(b.x1), \(b.y1), \(b.x2), \(b.y2)) must be finite with x1 <= x2 and y1 <= y2")
            }
        }
        guard config.resizeWidth >= 1, config.resizeHeight >= 1, config.resizeWidth * config.resizeHeight <= ImageLimits.maxPixels,
              config.meanBGR.count == 3 else {
            throw VisionError.invalidArgument("S3FD augmentation: resize size \(config.resizeWidth) x \(config.resizeHeight) and 3 means required")
        }
        var trace = S3FDAugmentationTrace()
        var img = image
        var labels = boxes
        if config.applyDistort { img = distort(img, random: &random) }
        trace.distorted = img
        if random.uniform(0, 1) > config.dataAnchorSamplingProb && config.anchorSampling {
            (img, labels) = try anchorCrop(img, boxes: boxes, random: &random, trace: &trace)
            trace.path = .anchorSampling
        } else {
            let samplers = [SSDSampler(minScale: 1)] + [SSDSampler](repeating: SSDSampler(minScale: 0.3), count: 4)
            let sampled = generateBatchSamples(samplers, boxes: boxes, width: img.width, height: img.height, random: &random)
            if !sampled.isEmpty {
                let idx = Int(random.uniform(0, Double(sampled.count)))
                (img, labels) = try cropImage(img, boxes: boxes, sample: sampled[min(idx, sampled.count - 1)])
                trace.path = .ssdCrop
            } else {
                trace.path = .ssdNoCrop
            }
        }
        trace.cropped = img
        let modeIndex = random.randint(0, 5)
        trace.resample = PILResample(rawValue: modeIndex) ?? .bilinear
        img = try pilResize(img, width: config.resizeWidth, height: config.resizeHeight, resample: trace.resample)
        if Int(random.uniform(0, 2)) == 1 {
            trace.mirrored = true
            img = img.flippedHorizontally()
            labels = labels.map { $0.flippedHorizontally() }
        }
        return S3FDSample(input: try networkInput(img), image: img, boxes: labels, trace: trace)
    }

    /// float32 [3, H, W]: R - 123, G - 117, B - 104 (to_chw_bgr, minus img_mean, back to RGB).
    public func networkInput(_ img: S3FDImage) throws -> Tensor {
        let plane = img.width * img.height
        var x = [Float](repeating: 0, count: 3 * plane)
        let mean = [config.meanBGR[2], config.meanBGR[1], config.meanBGR[0]]
        for i in 0..<plane {
            for c in 0..<3 { x[c * plane + i] = Float(img.pixels[3 * i + c]) - mean[c] }
        }
        return try Tensor(x, shape: [3, img.height, img.width])
    }

    // MARK: photometric distortion (PIL arithmetic)

    func distort<R: S3FDRandomSource>(_ image: S3FDImage, random: inout R) -> S3FDImage {
        var img = image
        if random.uniform(0, 1) > 0.5 {
            img = brightness(img, random: &random); img = contrast(img, random: &random)
            img = saturation(img, random: &random); img = hue(img, random: &random)
        } else {
            img = brightness(img, random: &random); img = saturation(img, random: &random)
            img = hue(img, random: &random); img = contrast(img, random: &random)
        }
        return img
    }

    func brightness<R: S3FDRandomSource>(_ img: S3FDImage, random: inout R) -> S3FDImage {
        guard random.uniform(0, 1) < config.brightnessProb else { return img }
        return Self.enhanceBrightness(img, random.uniform(-config.brightnessDelta, config.brightnessDelta) + 1)
    }

    func contrast<R: S3FDRandomSource>(_ img: S3FDImage, random: inout R) -> S3FDImage {
        guard random.uniform(0, 1) < config.contrastProb else { return img }
        return Self.enhanceContrast(img, random.uniform(-config.contrastDelta, config.contrastDelta) + 1)
    }

    func saturation<R: S3FDRandomSource>(_ img: S3FDImage, random: inout R) -> S3FDImage {
        guard random.uniform(0, 1) < config.saturationProb else { return img }
        return Self.enhanceColor(img, random.uniform(-config.saturationDelta, config.saturationDelta) + 1)
    }

    func hue<R: S3FDRandomSource>(_ img: S3FDImage, random: inout R) -> S3FDImage {
        guard random.uniform(0, 1) < config.hueProb else { return img }
        return Self.shiftHue(img, random.uniform(-config.hueDelta, config.hueDelta))
    }

    /// ImageEnhance.Brightness(img).enhance(f): a blend with black.
    static func enhanceBrightness(_ img: S3FDImage, _ f: Double) -> S3FDImage { pilBlend(img, degenerate: { _ in 0 }, factor: f) }

    /// ImageEnhance.Contrast(img).enhance(f): a blend with the gray of the L image's mean, int(mean + 0.5).
    static func enhanceContrast(_ img: S3FDImage, _ f: Double) -> S3FDImage {
        var total = 0.0
        for i in 0..<(img.width * img.height) { total += Double(pilLuma(img.pixels, 3 * i)) }
        let mean = UInt8(clamping: Int(total / Double(img.width * img.height) + 0.5))
        return pilBlend(img, degenerate: { _ in mean }, factor: f)
    }

    /// ImageEnhance.Color(img).enhance(f): a blend with the image's L conversion.
    static func enhanceColor(_ img: S3FDImage, _ f: Double) -> S3FDImage {
        pilBlend(img, degenerate: { pilLuma(img.pixels, $0 - $0 % 3) }, factor: f)
    }

    /// random_hue's arithmetic: PIL RGB -> HSV, H + delta stored back into uint8, HSV -> RGB.
    static func shiftHue(_ img: S3FDImage, _ delta: Double) -> S3FDImage {
        var out = img
        for i in 0..<(img.width * img.height) {
            var (h, s, v) = pilRGBToHSV(img.pixels[3 * i], img.pixels[3 * i + 1], img.pixels[3 * i + 2])
            // uint8 + float64 assigned into uint8: numpy truncates toward zero and wraps modulo 256.
            h = UInt8(truncatingIfNeeded: Int((Double(h) + delta).rounded(.towardZero)))
            let (r, g, b) = pilHSVToRGB(h, s, v)
            out.pixels[3 * i] = r; out.pixels[3 * i + 1] = g; out.pixels[3 * i + 2] = b
        }
        return out
    }

    // MARK: data-anchor-sampling (anchor_crop_image_sampling)

    func anchorCrop<R: S3FDRandomSource>(_ image: S3FDImage, boxes labelled: [S3FDBox], random: inout R,
                                          trace: inout S3FDAugmentationTrace) throws -> (S3FDImage, [S3FDBox]) {
        let iw = Double(image.width), ih = Double(image.height)
        var boxes = labelled.map { [$0.x1 * iw, $0.y1 * ih, $0.x2 * iw, $0.y2 * ih] }
        let labels = labelled.map(\.label)
        let area = boxes.map { ($0[2] - $0[0] + 1) * ($0[3] - $0[1] + 1) }
        let idx = random.randint(0, boxes.count)
        let side = area[idx].squareRoot()
        var distance = 9_999_999.0, anchorIdx = 5
        for (i, a) in Self.anchorScales.enumerated() where abs(a - side) < distance { (distance, anchorIdx) = (abs(a - side), i) }
        let target = Self.anchorScales[random.randint(0, min(anchorIdx + 1, 5) + 1)]
        var ratio = target / side
        ratio = ratio * pow(2, random.uniform(-1, 1))
        let maxSize = 12000.0
        // Python's int() of the product (truncation), compared with 12000².
        if (ih * ratio * iw * ratio).rounded(.towardZero) > maxSize * maxSize { ratio = (maxSize * maxSize / (ih * iw)).squareRoot() }
        let interpolation = CVInterpolation(rawValue: random.randint(0, 5)) ?? .linear
        guard ratio.isFinite, ratio > 0 else {
            throw VisionError.invalidArgument("S3FD augmentation: face \(idx) gives an invalid rescale ratio \(ratio)")
        }
        let resized = try cvResize(image, ratio: ratio, interpolation: interpolation)
        trace.anchorInterpolation = interpolation; trace.anchorRatio = ratio; trace.anchorResized = (resized.width, resized.height)
        for i in 0..<boxes.count { for k in 0..<4 { boxes[i][k] *= ratio } }
        let height = resized.height, width = resized.width
        let xmin = boxes[idx][0], ymin = boxes[idx][1]
        let bw = boxes[idx][2] - boxes[idx][0] + 1, bh = boxes[idx][3] - boxes[idx][1] + 1
        let w = 640.0, h = 640.0
        var candidates: [[Int]] = []
        for _ in 0..<50 {
            var wOff: Double, hOff: Double
            if w < Double(max(height, width)) {
                wOff = bw <= w ? random.uniform(xmin + bw - w, xmin) : random.uniform(xmin, xmin + bw - w)
                hOff = bh <= h ? random.uniform(ymin + bh - h, ymin) : random.uniform(ymin, ymin + bh - h)
            } else {
                wOff = random.uniform(Double(width) - w, 0)
                hOff = random.uniform(Double(height) - h, 0)
            }
            wOff = floor(wOff); hOff = floor(hOff)
            let rect = [Int(wOff), Int(hOff), Int(wOff + w), Int(hOff + h)]
            let r = rect.map(Double.init)
            var contained = false, best = -Double.infinity
            for b in boxes {
                if r[0] <= b[0] && r[1] <= b[1] && r[2] >= b[2] && r[3] >= b[3] { contained = true }
                // jaccard_numpy: intersection over union, areas without the +1.
                let iw = max(min(b[2], r[2]) - max(b[0], r[0]), 0), ih = max(min(b[3], r[3]) - max(b[1], r[1]), 0)
                let inter = iw * ih
                let union = (b[2] - b[0]) * (b[3] - b[1]) + (r[2] - r[0]) * (r[3] - r[1]) - inter
                best = max(best, inter / union)
            }
            if !contained && !(best > 0.7) { continue }
            candidates.append(rect)
        }
        func normalized(_ kept: [([Double], Int)], _ cw: Int, _ ch: Int) -> [S3FDBox] {
            var kept = kept
            if config.filterMinFace {
                kept = kept.filter { ($0.0[2] - $0.0[0]) * ($0.0[3] - $0.0[1]) > config.minFaceSize * config.minFaceSize }
            }
            return kept.map { b, l in
                S3FDBox(label: l, x1: b[0] / Double(cw), y1: b[1] / Double(ch), x2: b[2] / Double(cw), y2: b[3] / Double(ch))
            }
        }
        guard !candidates.isEmpty else {
            return (resized, normalized(Array(zip(boxes, labels)), width, height))
        }
        let choice = candidates[random.randint(0, candidates.count)]
        var kept: [([Double], Int)] = []
        for (b, l) in zip(boxes, labels) {
            let cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2
            if Double(choice[0]) < cx && Double(choice[1]) < cy && Double(choice[2]) > cx && Double(choice[3]) > cy {
                kept.append(([b[0] - Double(choice[0]), b[1] - Double(choice[1]), b[2] - Double(choice[0]), b[3] - Double(choice[1])], l))
            }
        }
        let cropped: S3FDImage
        if choice[0] < 0 || choice[1] < 0 {
            // Pad left / top with the mean (the BGR means written into the RGB array, as the official code does),
            // then cut the window, which numpy clips at the right and bottom.
            let padL = max(-choice[0], 0), padT = max(-choice[1], 0)
            let nw = width + padL, nh = height + padT
            let x0 = max(choice[0], 0), y0 = max(choice[1], 0)
            let x1 = min(x0 + choice[2] - choice[0], nw), y1 = min(y0 + choice[3] - choice[1], nh)
            guard x1 > x0, y1 > y0 else { throw VisionError.invalidArgument("S3FD augmentation: empty anchor crop") }
            var px = [UInt8](repeating: 0, count: (x1 - x0) * (y1 - y0) * 3)
            let fill = config.meanBGR.map { UInt8(clamping: Int($0)) }
            for y in y0..<y1 {
                for x in x0..<x1 {
                    let d = ((y - y0) * (x1 - x0) + (x - x0)) * 3
                    let sx = x - padL, sy = y - padT
                    if sx >= 0 && sy >= 0 {
                        let s = (sy * width + sx) * 3
                        px[d] = resized.pixels[s]; px[d + 1] = resized.pixels[s + 1]; px[d + 2] = resized.pixels[s + 2]
                    } else {
                        px[d] = fill[0]; px[d + 1] = fill[1]; px[d + 2] = fill[2]
                    }
                }
            }
            cropped = try S3FDImage(width: x1 - x0, height: y1 - y0, pixels: px)
        } else {
            let x1 = min(choice[2], width), y1 = min(choice[3], height)
            guard x1 > choice[0], y1 > choice[1] else { throw VisionError.invalidArgument("S3FD augmentation: empty anchor crop") }
            cropped = try resized.crop(x0: choice[0], y0: choice[1], x1: x1, y1: y1)
        }
        return (cropped, normalized(kept, cropped.width, cropped.height))
    }

    // MARK: SSD-style batch sampling and crop_image

    struct SSDSampler {
        var maxSample = 1, maxTrial = 50
        var minScale: Double, maxScale = 1.0
        var minAspectRatio = 1.0, maxAspectRatio = 1.0
        var minJaccard = 0.0, maxJaccard = 0.0
        var minCoverage = 1.0, maxCoverage = 0.0
        var useSquare = true
        init(minScale: Double) { self.minScale = minScale }
    }

    struct Rect { var xmin: Double, ymin: Double, xmax: Double, ymax: Double }

    static func area(_ b: Rect) -> Double { (b.xmax < b.xmin || b.ymax < b.ymin) ? 0 : (b.xmax - b.xmin) * (b.ymax - b.ymin) }

    static func clip(_ b: Rect) -> Rect {
        func c(_ v: Double) -> Double { max(min(v, 1), 0) }
        return Rect(xmin: c(b.xmin), ymin: c(b.ymin), xmax: c(b.xmax), ymax: c(b.ymax))
    }

    func generateBatchSamples<R: S3FDRandomSource>(_ samplers: [SSDSampler], boxes: [S3FDBox], width: Int, height: Int,
                                                   random: inout R) -> [Rect] {
        var sampled: [Rect] = []
        for s in samplers {
            var found = 0
            for _ in 0..<s.maxTrial {
                if found >= s.maxSample { break }
                let scale = random.uniform(s.minScale, s.maxScale)
                var aspect = random.uniform(s.minAspectRatio, s.maxAspectRatio)
                aspect = max(aspect, pow(scale, 2)); aspect = min(aspect, 1 / pow(scale, 2))
                var bw = scale * pow(aspect, 0.5), bh = scale / pow(aspect, 0.5)
                if s.useSquare {
                    if height < width { bw = bh * Double(height) / Double(width) } else { bh = bw * Double(width) / Double(height) }
                }
                let x = random.uniform(0, 1 - bw), y = random.uniform(0, 1 - bh)
                let sample = Rect(xmin: x, ymin: y, xmax: x + bw, ymax: y + bh)
                if satisfies(s, sample, boxes) { sampled.append(sample); found += 1 }
            }
        }
        return sampled
    }

    func satisfies(_ s: SSDSampler, _ sample: Rect, _ boxes: [S3FDBox]) -> Bool {
        let hasJaccard = !(s.minJaccard == 0 && s.maxJaccard == 0)
        let hasCoverage = !(s.minCoverage == 0 && s.maxCoverage == 0)
        if !hasJaccard && !hasCoverage { return true }
        var found = false
        for b in boxes {
            let o = Rect(xmin: b.x1, ymin: b.y1, xmax: b.x2, ymax: b.y2)
            if hasJaccard {
                var overlap = 0.0
                if !(sample.xmin >= o.xmax || sample.xmax <= o.xmin || sample.ymin >= o.ymax || sample.ymax <= o.ymin) {
                    let inter = (min(sample.xmax, o.xmax) - max(sample.xmin, o.xmin)) * (min(sample.ymax, o.ymax) - max(sample.ymin, o.ymin))
                    overlap = inter / (Self.area(sample) + Self.area(o) - inter)
                }
                if s.minJaccard != 0 && overlap < s.minJaccard { continue }
                if s.maxJaccard != 0 && overlap > s.maxJaccard { continue }
                found = true
            }
            if hasCoverage {
                // bbox_coverage(object, sample): intersection area over the object's area.
                var coverage = 0.0
                if !(sample.xmin > o.xmax || sample.xmax < o.xmin || sample.ymin > o.ymax || sample.ymax < o.ymin) {
                    let inter = Self.area(Rect(xmin: max(o.xmin, sample.xmin), ymin: max(o.ymin, sample.ymin),
                                               xmax: min(o.xmax, sample.xmax), ymax: min(o.ymax, sample.ymax)))
                    if inter > 0 { coverage = inter / Self.area(o) }
                }
                if s.minCoverage != 0 && coverage < s.minCoverage { continue }
                if s.maxCoverage != 0 && coverage > s.maxCoverage { continue }
                found = true
            }
            if found { return true }
        }
        return found
    }

    func cropImage(_ image: S3FDImage, boxes: [S3FDBox], sample raw: Rect) throws -> (S3FDImage, [S3FDBox]) {
        let sample = Self.clip(raw)
        let w = Double(image.width), h = Double(image.height)
        let x0 = Int(sample.xmin * w), x1 = Int(sample.xmax * w), y0 = Int(sample.ymin * h), y1 = Int(sample.ymax * h)
        guard x1 > x0, y1 > y0 else {
            throw VisionError.invalidArgument("S3FD augmentation: the crop of a \(image.width) x \(image.height) image is empty")
        }
        let cropped = try image.crop(x0: x0, y0: y0, x1: x1, y1: y1)
        // transform_labels_sampling: keep faces whose centre is in the sample, projected and clipped, at least
        // min_face_size² at the output resolution.
        var out: [S3FDBox] = []
        let sw = sample.xmax - sample.xmin, sh = sample.ymax - sample.ymin
        let resizeVal = Double(config.resizeWidth)
        for b in boxes {
            let cx = (b.x2 + b.x1) / 2, cy = (b.y2 + b.y1) / 2
            guard cx >= sample.xmin && cx <= sample.xmax && cy >= sample.ymin && cy <= sample.ymax else { continue }
            if b.x1 >= sample.xmax || b.x2 <= sample.xmin || b.y1 >= sample.ymax || b.y2 <= sample.ymin { continue }
            let p = Self.clip(Rect(xmin: (b.x1 - sample.xmin) / sw, ymin: (b.y1 - sample.ymin) / sh,
                                   xmax: (b.x2 - sample.xmin) / sw, ymax: (b.y2 - sample.ymin) / sh))
            guard Self.area(p) > 0 else { continue }
            let rw = (p.xmax - p.xmin) * resizeVal, rh = (p.ymax - p.ymin) * resizeVal
            if rw * rh < config.minFaceSize * config.minFaceSize { continue }
            out.append(S3FDBox(label: b.label, x1: p.xmin, y1: p.ymin, x2: p.xmax, y2: p.ymax))
        }
        return (cropped, out)
    }
}

// MARK: - PIL colour arithmetic

/// PIL's RGB -> L: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
@inline(__always) func pilLuma(_ p: [UInt8], _ i: Int) -> UInt8 {
    let r = Int(p[i]) * 19595, g = Int(p[i + 1]) * 38470, b = Int(p[i + 2]) * 7471
    return UInt8((r + g + b + 0x8000) >> 16)
}

/// Image.blend(degenerate, image, factor) (ImagingBlend): in float, truncated; clipped when extrapolating.
func pilBlend(_ img: S3FDImage, degenerate: (Int) -> UInt8, factor: Double) -> S3FDImage {
    let alpha = Float(factor)
    if alpha == 0 { var out = img; for i in 0..<out.pixels.count { out.pixels[i] = degenerate(i) }; return out }
    if alpha == 1 { return img }
    var out = img
    let interpolate = alpha >= 0 && alpha <= 1
    for i in 0..<img.pixels.count {
        let a = Int(degenerate(i)), b = Int(img.pixels[i])
        let t: Float = Float(a) + alpha * Float(b - a)
        if interpolate {
            out.pixels[i] = UInt8(clamping: Int(t))
        } else {
            out.pixels[i] = t <= 0 ? 0 : t >= 255 ? 255 : UInt8(Int(t))
        }
    }
    return out
}

/// rgb2hsv_row of PIL's Convert.c (float and double steps as there).
func pilRGBToHSV(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
    let maxc = max(r, g, b), minc = min(r, g, b)
    if minc == maxc { return (0, 0, maxc) }
    let cr = Float(maxc - minc)
    let s: Float = cr / Float(maxc)
    let rc: Float = Float(maxc - r) / cr, gc: Float = Float(maxc - g) / cr, bc: Float = Float(maxc - b) / cr
    var h: Float
    if r == maxc { h = bc - gc } else if g == maxc { h = Float(2.0 + Double(rc) - Double(bc)) } else { h = Float(4.0 + Double(gc) - Double(rc)) }
    h = Float(fmod(Double(h) / 6.0 + 1.0, 1.0))
    let uh = UInt8(clamping: Int((Double(h) * 255.0).rounded(.towardZero)))
    let us = UInt8(clamping: Int((Double(s) * 255.0).rounded(.towardZero)))
    return (uh, us, maxc)
}

/// hsv2rgb of PIL's Convert.c.
func pilHSVToRGB(_ h: UInt8, _ s: UInt8, _ v: UInt8) -> (UInt8, UInt8, UInt8) {
    if s == 0 { return (v, v, v) }
    let hh = Double(Float(h)) * 6.0 / 255.0
    let i = Int(floor(hh))
    let f = Float(hh - Double(Float(i)))
    let fs = Float(Double(Float(s)) / 255.0)
    let vv = Double(Float(v))
    let p = UInt8(clamping: Int((vv * (1.0 - Double(fs))).rounded()))
    let q = UInt8(clamping: Int((vv * (1.0 - Double(fs * f))).rounded()))
    let t = UInt8(clamping: Int((vv * (1.0 - Double(fs) * (1.0 - Double(f)))).rounded()))
    switch i % 6 {
    case 0: return (v, t, p)
    case 1: return (q, v, p)
    case 2: return (p, v, t)
    case 3: return (p, q, v)
    case 4: return (t, p, v)
    default: return (v, p, q)
    }
}
