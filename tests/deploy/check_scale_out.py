#!/usr/bin/env python3
"""Structural checks of the scale-out Kubernetes manifests (deploy/k8s/scale-out).

No cluster runs here, so this checks what would break one: every resource
listed exists and parses; every provp-server flag used is a flag of
server/main.cc; the inference and tuning Deployments share the PostgreSQL
Secret and the ReadWriteMany volume; the headless Service selects inference
pods only; the HPA targets the inference Deployment on a metric provp
exports (deploy/metrics.txt). When kubectl is installed, `kubectl kustomize`
must build it too. Exits non-zero with the list of problems.
Usage: check_scale_out.py REPO_ROOT
"""
import os
import re
import shutil
import subprocess
import sys

import yaml  # python3-yaml (yamllint's dependency)


def main(root):
    overlay = os.path.join(root, "deploy/k8s/scale-out")
    problems = []
    with open(os.path.join(overlay, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    docs = []
    for name in kustomization["resources"]:
        path = os.path.join(overlay, name)
        if not os.path.isfile(path):
            problems.append("resource %s is missing" % name)
            continue
        with open(path) as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    with open(os.path.join(root, "server/main.cc")) as f:
        flags = set(re.findall(r'add_option\("(--[a-z0-9-]+)', f.read()))
    with open(os.path.join(root, "deploy/metrics.txt")) as f:
        metrics = {l.split()[0] for l in f if l.strip() and not l.startswith("#")}

    deployments = by_kind.get("Deployment", {})
    roles = {}
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]
        if dep["spec"]["selector"]["matchLabels"].items() - pod["metadata"]["labels"].items():
            problems.append("%s: selector does not match its pod labels" % name)
        container = pod["spec"]["containers"][0]
        args = container.get("args", [])
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag.startswith("--") and flag not in flags:
                problems.append("%s: %s is not a provp-server flag" % (name, flag))
        role = [a.split("=", 1)[1] for a in args if a.startswith("--role=")]
        if len(role) != 1:
            problems.append("%s: needs exactly one --role" % name)
            continue
        roles[role[0]] = dep
        if "--store=$(PROVP_STORE)" not in args:
            problems.append("%s: --store=$(PROVP_STORE) missing" % name)
        env = {e["name"]: e for e in container.get("env", [])}
        ref = env.get("PROVP_STORE", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") != "provp-store" or ref.get("key") not in (
            by_kind.get("Secret", {}).get("provp-store", {}).get("stringData", {})
        ):
            problems.append("%s: PROVP_STORE must come from Secret provp-store" % name)
        claims = [v["persistentVolumeClaim"]["claimName"]
                  for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
        if claims != ["provp-data"]:
            problems.append("%s: must mount the shared provp-data volume" % name)
        if "nvidia.com/gpu" not in container["resources"]["limits"]:
            problems.append("%s: no GPU limit" % name)
    if set(roles) != {"inference", "tuning"}:
        problems.append("want one inference and one tuning Deployment, got %s" % sorted(roles))

    pvc = by_kind.get("PersistentVolumeClaim", {}).get("provp-data")
    if not pvc or pvc["spec"]["accessModes"] != ["ReadWriteMany"]:
        problems.append("provp-data must be ReadWriteMany")

    headless = [s for s in by_kind.get("Service", {}).values()
                if s["spec"].get("clusterIP") == "None"]
    if len(headless) != 1:
        problems.append("want one headless Service for client-side round_robin")
    elif "inference" in roles and "tuning" in roles:
        selector = headless[0]["spec"]["selector"].items()
        inference = roles["inference"]["spec"]["template"]["metadata"]["labels"].items()
        tuning = roles["tuning"]["spec"]["template"]["metadata"]["labels"].items()
        if selector - inference:
            problems.append("headless Service does not select inference pods")
        if not selector - tuning:
            problems.append("headless Service also selects tuning pods")

    hpas = list(by_kind.get("HorizontalPodAutoscaler", {}).values())
    if len(hpas) != 1:
        problems.append("want one HorizontalPodAutoscaler")
    else:
        spec = hpas[0]["spec"]
        if "inference" in roles and (
            spec["scaleTargetRef"]["name"] != roles["inference"]["metadata"]["name"]
        ):
            problems.append("HPA must scale the inference Deployment")
        for m in spec["metrics"]:
            name = m.get("pods", {}).get("metric", {}).get("name")
            if name not in metrics:
                problems.append("HPA metric %s is not in deploy/metrics.txt" % name)

    postgres = by_kind.get("StatefulSet", {}).get("provp-postgres")
    if postgres is None:
        problems.append("no PostgreSQL StatefulSet")

    for r in kustomization.get("replicas", []):
        if r["name"] not in deployments:
            problems.append("replicas: %s is not a Deployment here" % r["name"])

    kubectl = shutil.which("kubectl")
    if kubectl:
        built = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True)
        if built.returncode != 0:
            problems.append("kubectl kustomize failed: " + built.stderr)
        else:
            kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
            if kinds != sorted(d["kind"] for d in docs):
                problems.append("kustomize output kinds differ: %s" % kinds)
            print("kubectl kustomize: %d objects" % len(kinds))
    else:
        print("kubectl not installed: structural checks only")

    for p in problems:
        print("PROBLEM:", p)
    print("%d resources, %d problems" % (len(docs), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
