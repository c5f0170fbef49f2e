// /verify: hash a dropped file in the browser (it is never uploaded), and re-check the server's
// answer independently: leaf hash, RFC 9162 §2.1.3.2 audit path, Ed25519 tree-head signature.
(function () {
  "use strict";

  var subtle = window.crypto && window.crypto.subtle;
  var form = document.getElementById("verify-form");
  var zone = document.getElementById("drop-zone");
  var fileInput = document.getElementById("verify-file");
  var status = document.getElementById("drop-status");
  var shaInput = document.getElementById("f-sha256");

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) { return ("0" + b.toString(16)).slice(-2); })
      .join("");
  }

  function fromBase64(text) {
    var raw = atob(text);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function concat(parts) {
    var length = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(length);
    var offset = 0;
    parts.forEach(function (p) { out.set(p, offset); offset += p.length; });
    return out;
  }

  function sha256(bytes) {
    return subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  // --- hashing a file -------------------------------------------------------------------------
  if (form && zone && fileInput) {
    if (!subtle) {
      status.textContent = form.getAttribute("data-no-webcrypto");
    } else {
      zone.hidden = false;
      var hashFile = function (file) {
        status.textContent = form.getAttribute("data-hashing");
        file.arrayBuffer()
          .then(function (data) { return subtle.digest("SHA-256", data); })
          .then(function (digest) {
            shaInput.value = hex(digest);
            form.submit();
          });
      };
      fileInput.addEventListener("change", function () {
        if (fileInput.files && fileInput.files[0]) hashFile(fileInput.files[0]);
      });
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
      });
      zone.addEventListener("drop", function (e) {
        e.preventDefault();
        if (e.dataTransfer && e.dataTransfer.files[0]) hashFile(e.dataTransfer.files[0]);
      });
    }
  }

  // --- re-checking the answer -----------------------------------------------------------------
  var dataNode = document.getElementById("ledger-data");
  if (!dataNode || !subtle) return;
  var data = JSON.parse(dataNode.textContent);
  var head = data.tree_head;
  var root = fromBase64(head.sha256_root_hash);

  function nodeHash(left, right) {
    return sha256(concat([new Uint8Array([1]), left, right]));
  }

  // RFC 9162 §2.1.3.2: the root implied by leaf `index` of `size` and its audit path.
  function rootFromPath(index, size, leaf, path) {
    if (index >= size) return Promise.resolve(null);
    var fn = index, sn = size - 1;
    var chain = Promise.resolve(leaf);
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) return Promise.resolve(null);
      var p = path[i];
      if (fn % 2 === 1 || fn === sn) {
        chain = chain.then(nodeHash.bind(null, p));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        chain = chain.then((function (sibling) {
          return function (r) { return nodeHash(r, sibling); };
        })(p));
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? chain : Promise.resolve(null);
  }

  // RFC 6962 §3.5 TreeHeadSignature: version 0, type 1, uint64 timestamp, uint64 size, root.
  function signedData() {
    var out = new Uint8Array(50);
    var view = new DataView(out.buffer);
    out[0] = 0; out[1] = 1;
    view.setBigUint64(2, BigInt(head.timestamp));
    view.setBigUint64(10, BigInt(head.tree_size));
    out.set(root, 18);
    return out;
  }

  function checkSignature() {
    var signed = fromBase64(head.tree_head_signature);  // 0x0807, uint16 64, signature
    if (signed.length !== 68 || signed[0] !== 8 || signed[1] !== 7) return Promise.resolve(false);
    return subtle
      .importKey("raw", fromBase64(data.public_key), { name: "Ed25519" }, false, ["verify"])
      .then(function (key) {
        return subtle.verify({ name: "Ed25519" }, key, signed.slice(4), signedData());
      })
      .catch(function () { return null; });  // null: this browser has no Ed25519
  }

  var signature = checkSignature();
  data.matches.forEach(function (match, i) {
    var out = document.querySelector('[data-browser-check="' + i + '"]');
    if (!out) return;
    out.hidden = false;
    out.textContent = out.getAttribute("data-pending");
    var leaf = fromBase64(match.entry.leaf_input);
    var proof = match.inclusion_proof;
    var entryOk = match.entry.content_sha256 === data.sha256;
    sha256(concat([new Uint8Array([0]), leaf]))
      .then(function (leafHash) {
        var path = proof.audit_path.map(fromBase64);
        return rootFromPath(proof.leaf_index, proof.tree_size, leafHash, path);
      })
      .then(function (computed) {
        var proofOk = entryOk && computed !== null && equal(computed, root) &&
          proof.tree_size === head.tree_size && proof.leaf_index === match.entry.index;
        return signature.then(function (sigOk) {
          var verdict = !proofOk || sigOk === false ? "bad" : sigOk === null ? "ok-no-sig" : "ok";
          out.textContent = out.getAttribute("data-" + verdict);
          out.className = "browser-check " + (verdict === "bad" ? "check-bad" : "check-ok");
        });
      });
  });
})();
