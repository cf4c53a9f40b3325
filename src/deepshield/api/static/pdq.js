/*
 * PDQ (Meta's 256-bit perceptual image hash) in plain JavaScript, written for Deepshield, so a person can
 * hash their photos on their own device and send only the hashes.
 *
 * Steps (as in the PDQ paper and its reference implementation):
 *   1. luminance Y = 0.299 R + 0.587 G + 0.114 B, as floats;
 *   2. two passes of a centred box filter along rows then columns (a "tent" filter), window ~ size / 128;
 *   3. sample a 64x64 grid from the blurred image; the quality (0-100) is the sum of neighbour differences;
 *   4. 16x16 block of the 2-D DCT (coefficients 1..16, the DC term dropped);
 *   5. bit = coefficient > median of the 256 coefficients.
 * The hex form is the one python-threatexchange and pdqhash use (most significant bit = coefficient 255).
 *
 * Works in browsers (window.DeepshieldPDQ) and in Node (module.exports) for testing.
 */
(function (root) {
  "use strict";

  var DCT = (function () {
    // 16 x 64 matrix: D[i][j] = sqrt(2/64) cos(pi / 128 * (i + 1) * (2 j + 1))
    var d = new Float64Array(16 * 64);
    var scale = Math.sqrt(2 / 64);
    for (var i = 0; i < 16; i++) {
      for (var j = 0; j < 64; j++) {
        d[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
      }
    }
    return d;
  })();

  function windowSize(oldDim, newDim) {
    return Math.floor((oldDim + 2 * newDim - 1) / (2 * newDim));
  }

  // Centred moving average over `len` samples spaced `stride` apart, starting at `start`.
  // Output o averages input [o + half - win, o + half - 1] clipped to the vector (windows shrink at edges).
  function box1d(src, dst, start, stride, len, win, prefix) {
    var half = Math.floor((win + 2) / 2);
    prefix[0] = 0;
    for (var k = 0; k < len; k++) prefix[k + 1] = prefix[k] + src[start + k * stride];
    for (var o = 0; o < len; o++) {
      var lo = o + half - win;
      var hi = o + half; // exclusive
      if (lo < 0) lo = 0;
      if (hi > len) hi = len;
      dst[start + o * stride] = (prefix[hi] - prefix[lo]) / (hi - lo);
    }
  }

  function hashLuma(luma, width, height) {
    var tmp = new Float32Array(width * height);
    var wRows = Math.max(1, windowSize(width, 64));
    var wCols = Math.max(1, windowSize(height, 64));
    var prefix = new Float64Array(Math.max(width, height) + 1);
    for (var pass = 0; pass < 2; pass++) {
      for (var r = 0; r < height; r++) box1d(luma, tmp, r * width, 1, width, wRows, prefix);
      for (var c = 0; c < width; c++) box1d(tmp, luma, c, width, height, wCols, prefix);
    }
    var a = new Float64Array(64 * 64);
    for (var i = 0; i < 64; i++) {
      var ini = Math.floor(((i + 0.5) * height) / 64);
      for (var j = 0; j < 64; j++) {
        var inj = Math.floor(((j + 0.5) * width) / 64);
        a[i * 64 + j] = luma[ini * width + inj];
      }
    }
    // Quality: gradient sum over the 64x64 grid.
    var gs = 0;
    for (i = 0; i < 63; i++) {
      for (j = 0; j < 64; j++) gs += Math.abs(Math.trunc(((a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100) / 255));
    }
    for (i = 0; i < 64; i++) {
      for (j = 0; j < 63; j++) gs += Math.abs(Math.trunc(((a[i * 64 + j] - a[i * 64 + j + 1]) * 100) / 255));
    }
    var quality = Math.min(100, Math.trunc(gs / 90));
    // B = D A D^T (16 x 16)
    var t = new Float64Array(16 * 64);
    for (i = 0; i < 16; i++) {
      for (j = 0; j < 64; j++) {
        var s = 0;
        for (var k = 0; k < 64; k++) s += DCT[i * 64 + k] * a[k * 64 + j];
        t[i * 64 + j] = s;
      }
    }
    var b = new Float64Array(256);
    for (i = 0; i < 16; i++) {
      for (j = 0; j < 16; j++) {
        var s2 = 0;
        for (k = 0; k < 64; k++) s2 += t[i * 64 + k] * DCT[j * 64 + k];
        b[i * 16 + j] = s2;
      }
    }
    var sorted = Array.prototype.slice.call(b).sort(function (x, y) { return x - y; });
    var median = sorted[127]; // lower median, as the reference's Torben median of an even count
    // Bit k (coefficient k) is bit k of the 256-bit number; hex is written most significant first.
    var hex = "";
    for (var nib = 63; nib >= 0; nib--) {
      var v = 0;
      for (var bit = 3; bit >= 0; bit--) v = (v << 1) | (b[nib * 4 + bit] > median ? 1 : 0);
      hex += v.toString(16);
    }
    return { hash: hex, quality: quality };
  }

  // Pixels packed `stride` values apart, red first (4: RGBA, 3: RGB): step 1's luminance, then the hash.
  function hashPixels(data, width, height, stride) {
    var n = width * height;
    var luma = new Float32Array(n);
    for (var i = 0, p = 0; i < n; i++, p += stride) {
      luma[i] = 0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2];
    }
    return hashLuma(luma, width, height);
  }

  function hashRGBA(data, width, height) {
    return hashPixels(data, width, height, 4);
  }

  function hashRGB(data, width, height) {
    return hashPixels(data, width, height, 3);
  }

  // Browser: decode a File/Blob at full resolution (EXIF orientation applied, no colour conversion, as the
  // server's decoder does) and hash it. Resolves to {hash, quality, width, height}.
  function hashBlob(blob) {
    return createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                     premultiplyAlpha: "none" })
      .then(function (bmp) {
        var canvas = typeof OffscreenCanvas !== "undefined"
          ? new OffscreenCanvas(bmp.width, bmp.height)
          : Object.assign(document.createElement("canvas"), { width: bmp.width, height: bmp.height });
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        ctx.fillStyle = "#fff"; // transparent pixels count as white, as on the server
        ctx.fillRect(0, 0, bmp.width, bmp.height);
        ctx.drawImage(bmp, 0, 0);
        var img = ctx.getImageData(0, 0, bmp.width, bmp.height);
        var r = hashRGBA(img.data, bmp.width, bmp.height);
        r.width = bmp.width;
        r.height = bmp.height;
        bmp.close && bmp.close();
        return r;
      });
  }

  var api = { hashRGBA: hashRGBA, hashRGB: hashRGB, hashBlob: hashBlob };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.DeepshieldPDQ = api;
})(typeof self !== "undefined" ? self : this);
