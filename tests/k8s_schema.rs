//! Schema check of `deploy/kubernetes/`, offline: every document of every YAML file
//! deserializes into the Kubernetes API type of its `apiVersion`/`kind` (k8s-openapi,
//! Kubernetes 1.37; an unknown kind is a problem) with no field left unconsumed
//! (`serde_ignored` reports a misspelled or misplaced key with its path, which serde
//! would otherwise drop silently), and the rules the API server enforces but the types
//! leave optional or default to zero hold: names, selectors matching pod labels, the
//! governing Service, containers' names, images and ports, probe ports, volume mounts.
//! `check` returns every problem; a unit test feeds it broken copies and asserts each
//! is reported.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on any unexpected step"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A document of a manifest file: where it comes from (`file.yaml[index]`) and its tree.
struct Doc {
    source: String,
    value: Value,
}

/// Every non-empty document of every `.yaml`/`.yml` file under `deploy/kubernetes/`.
fn manifests() -> Vec<Doc> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML under {}", dir.display());
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, value) in values.into_iter().filter(|v| !v.is_null()).enumerate() {
            docs.push(Doc {
                source: format!("{name}[{i}]"),
                value,
            });
        }
    }
    docs
}

/// A `serde_ignored` path as dotted keys and indexes, without its `Option` and newtype
/// steps (`spec.template.spec.containers.0.readinesProbe`).
fn dotted(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    let join = |parent: &P, step: String| {
        let p = dotted(parent);
        if p.is_empty() {
            step
        } else {
            format!("{p}.{step}")
        }
    };
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => join(parent, index.to_string()),
        P::Map { parent, key } => join(parent, key.clone()),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            dotted(parent)
        }
    }
}

/// Deserializes `value` into `T`, a problem for each field `T` did not consume.
fn typed<T: DeserializeOwned>(
    source: &str,
    value: &Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    let mut ignored = Vec::new();
    let result: Result<T, _> = serde_ignored::deserialize(value, |p| ignored.push(dotted(&p)));
    for path in ignored {
        problems.push(format!("{source}: unknown field `{path}`"));
    }
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("{source}: does not deserialize: {e}"));
            None
        }
    }
}

enum Object {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Service(Box<Service>),
    StatefulSet(Box<StatefulSet>),
}

/// An object with the document it came from.
struct Obj {
    source: String,
    object: Object,
}

impl Obj {
    fn meta(&self) -> &ObjectMeta {
        match &self.object {
            Object::Namespace(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
        }
    }
    fn kind(&self) -> &'static str {
        match &self.object {
            Object::Namespace(_) => "Namespace",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Service(_) => "Service",
            Object::StatefulSet(_) => "StatefulSet",
        }
    }
    fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }
    fn namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or("default")
    }
}

/// A DNS-1123 label: 1-63 of `[a-z0-9-]`, alphanumeric at both ends.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// Whether a label selector selects `labels` (an empty selector selects nothing here:
/// the API rejects an empty StatefulSet selector, and a Service without one is not
/// what these manifests mean).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    let exact = selector.match_labels.as_ref();
    let exprs = selector.match_expressions.as_deref().unwrap_or_default();
    if exact.is_none_or(BTreeMap::is_empty) && exprs.is_empty() {
        return Err("is empty".into());
    }
    let mut ok = exact.is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    for e in exprs {
        let values = e.values.as_deref().unwrap_or_default();
        let has = labels.get(&e.key);
        ok &= match e.operator.as_str() {
            "In" => has.is_some_and(|v| values.contains(v)),
            "NotIn" => has.is_none_or(|v| !values.contains(v)),
            "Exists" => has.is_some(),
            "DoesNotExist" => has.is_none(),
            other => return Err(format!("has unknown operator {other:?}")),
        };
    }
    Ok(ok)
}

/// Every problem of the manifests `docs`, empty when they are what the API accepts and
/// hang together.
fn check(docs: &[Doc]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut objects = Vec::new();
    for doc in docs {
        let (s, v) = (doc.source.as_str(), &doc.value);
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        let object = match (api, kind) {
            ("v1", "Namespace") => typed(s, v, &mut problems).map(Object::Namespace),
            ("v1", "ConfigMap") => typed(s, v, &mut problems).map(Object::ConfigMap),
            ("v1", "Service") => typed(s, v, &mut problems).map(|o| Object::Service(Box::new(o))),
            ("apps/v1", "StatefulSet") => {
                typed(s, v, &mut problems).map(|o| Object::StatefulSet(Box::new(o)))
            }
            _ => {
                problems.push(format!("{s}: unknown apiVersion/kind {api:?}/{kind:?}"));
                None
            }
        };
        if let Some(object) = object {
            objects.push(Obj {
                source: doc.source.clone(),
                object,
            });
        }
    }
    check_names(&objects, &mut problems);
    for o in &objects {
        match &o.object {
            Object::Namespace(_) => {}
            Object::ConfigMap(c) => {
                let keys = c.data.iter().flat_map(|d| d.keys());
                for key in keys.chain(c.binary_data.iter().flat_map(|d| d.keys())) {
                    let valid = !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                    if !valid {
                        problems.push(format!("{}: invalid data key {key:?}", o.source));
                    }
                }
            }
            Object::Service(svc) => check_service(o, svc, &objects, &mut problems),
            Object::StatefulSet(set) => check_stateful_set(o, set, &objects, &mut problems),
        }
    }
    problems
}

/// Every object has a valid name, unique per kind and namespace, in a Namespace the
/// manifests create (or `default`).
fn check_names(objects: &[Obj], problems: &mut Vec<String>) {
    let namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|o| matches!(o.object, Object::Namespace(_)))
        .map(Obj::name)
        .collect();
    let mut seen = BTreeSet::new();
    for o in objects {
        let name = o.name();
        let label_only = matches!(o.object, Object::Namespace(_) | Object::Service(_));
        if name.is_empty() {
            problems.push(format!("{}: metadata.name is missing", o.source));
        } else if !(if label_only {
            dns_label(name)
        } else {
            dns_subdomain(name)
        }) {
            problems.push(format!(
                "{}: metadata.name {name:?} is not a DNS-1123 name",
                o.source
            ));
        }
        if matches!(o.object, Object::Namespace(_)) {
            if o.meta().namespace.is_some() {
                problems.push(format!(
                    "{}: a Namespace has no metadata.namespace",
                    o.source
                ));
            }
        } else if o.namespace() != "default" && !namespaces.contains(o.namespace()) {
            problems.push(format!(
                "{}: metadata.namespace {:?} is not a Namespace of these manifests",
                o.source,
                o.namespace()
            ));
        }
        if !seen.insert((o.kind(), o.namespace(), name)) {
            problems.push(format!(
                "{}: a second {} named {name:?}",
                o.source,
                o.kind()
            ));
        }
    }
}

/// The pod templates of the workloads in `namespace`, with their sources.
fn pod_templates<'a>(objects: &'a [Obj], namespace: &str) -> Vec<(&'a str, &'a PodTemplateSpec)> {
    objects
        .iter()
        .filter(|o| o.namespace() == namespace)
        .filter_map(|o| match &o.object {
            Object::StatefulSet(s) => Some((o.source.as_str(), &s.spec.template)),
            _ => None,
        })
        .collect()
}

fn labels_of(template: &PodTemplateSpec) -> BTreeMap<String, String> {
    template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn containers_of(template: &PodTemplateSpec) -> &[Container] {
    template
        .spec
        .as_ref()
        .map_or(&[], |s| s.containers.as_slice())
}

/// Whether `port` names (a string) or numbers (an int) a containerPort of `containers`.
fn declares(containers: &[Container], port: &IntOrString) -> bool {
    let ports = containers.iter().flat_map(|c| c.ports.iter().flatten());
    match port {
        IntOrString::Int(n) => ports.clone().any(|p| p.container_port == *n),
        IntOrString::String(name) => ports.clone().any(|p| p.name.as_deref() == Some(name)),
    }
}

fn check_service(o: &Obj, svc: &Service, objects: &[Obj], problems: &mut Vec<String>) {
    let s = &o.source;
    let Some(spec) = &svc.spec else {
        problems.push(format!("{s}: spec is missing"));
        return;
    };
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() {
        problems.push(format!("{s}: spec.ports is empty"));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !(1..=65535).contains(&p.port) {
            problems.push(format!("{s}: spec.ports.{i}.port {} is not a port", p.port));
        }
        match p.name.as_deref() {
            None if ports.len() > 1 => {
                problems.push(format!(
                    "{s}: spec.ports.{i}.name is required with several ports"
                ));
            }
            Some(n) if !names.insert(n) => {
                problems.push(format!("{s}: spec.ports.{i}.name {n:?} is not unique"));
            }
            _ => {}
        }
    }
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        problems.push(format!("{s}: spec.selector is missing"));
        return;
    }
    let as_selector = LabelSelector {
        match_labels: Some(selector.clone()),
        ..Default::default()
    };
    let selected: Vec<_> = pod_templates(objects, o.namespace())
        .into_iter()
        .filter(|(_, t)| selects(&as_selector, &labels_of(t)) == Ok(true))
        .collect();
    if selected.is_empty() {
        problems.push(format!(
            "{s}: spec.selector {selector:?} matches no pod template's labels"
        ));
        return;
    }
    for (i, p) in ports.iter().enumerate() {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        for (source, t) in &selected {
            if !declares(containers_of(t), &target) {
                problems.push(format!(
                    "{s}: spec.ports.{i}.targetPort {target:?} is no containerPort of {source}'s pods"
                ));
            }
        }
    }
}

fn check_stateful_set(o: &Obj, set: &StatefulSet, objects: &[Obj], problems: &mut Vec<String>) {
    let s = &o.source;
    // A missing spec deserializes to the default one: its empty selector is reported.
    let spec = &set.spec;
    let labels = labels_of(&spec.template);
    match selects(&spec.selector, &labels) {
        Err(e) => problems.push(format!("{s}: spec.selector {e}")),
        Ok(false) => problems.push(format!(
            "{s}: spec.selector does not match spec.template.metadata.labels {labels:?}"
        )),
        Ok(true) => {}
    }
    if spec.replicas.is_some_and(|r| r < 0) {
        problems.push(format!("{s}: spec.replicas is negative"));
    }
    match spec.service_name.as_deref() {
        None | Some("") => problems.push(format!("{s}: spec.serviceName is missing")),
        Some(name) => {
            let governing = objects.iter().find_map(|other| match &other.object {
                Object::Service(svc)
                    if other.name() == name && other.namespace() == o.namespace() =>
                {
                    Some(svc)
                }
                _ => None,
            });
            match governing {
                None => problems.push(format!("{s}: spec.serviceName {name:?} names no Service")),
                Some(svc) => {
                    let ip = svc.spec.as_ref().and_then(|sp| sp.cluster_ip.as_deref());
                    if ip != Some("None") {
                        problems.push(format!(
                            "{s}: spec.serviceName {name:?} is not headless (clusterIP: None)"
                        ));
                    }
                }
            }
        }
    }
    let mut claims = BTreeSet::new();
    for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let at = format!("{s}: spec.volumeClaimTemplates.{i}");
        let name = claim.metadata.name.as_deref().unwrap_or("");
        if !dns_label(name) {
            problems.push(format!("{at}.metadata.name {name:?} is missing or invalid"));
        }
        claims.insert(name.to_owned());
        let cspec = claim.spec.as_ref();
        if cspec
            .and_then(|c| c.access_modes.as_ref())
            .is_none_or(Vec::is_empty)
        {
            problems.push(format!("{at}.spec.accessModes is missing"));
        }
        let requests = cspec
            .and_then(|c| c.resources.as_ref())
            .and_then(|r| r.requests.as_ref());
        if requests.is_none_or(|r| !r.contains_key("storage")) {
            problems.push(format!("{at}.spec.resources.requests.storage is missing"));
        }
    }
    let Some(pod) = &spec.template.spec else {
        problems.push(format!("{s}: spec.template.spec is missing"));
        return;
    };
    let mut volumes = claims;
    for (i, v) in pod.volumes.iter().flatten().enumerate() {
        if !dns_label(&v.name) || !volumes.insert(v.name.clone()) {
            problems.push(format!(
                "{s}: spec.template.spec.volumes.{i}.name {:?} is invalid or not unique",
                v.name
            ));
        }
        if let Some(cm) = &v.config_map {
            let exists = objects.iter().any(|other| {
                matches!(other.object, Object::ConfigMap(_))
                    && other.name() == cm.name
                    && other.namespace() == o.namespace()
            });
            if !exists && cm.optional != Some(true) {
                problems.push(format!(
                    "{s}: spec.template.spec.volumes.{i}.configMap.name {:?} names no ConfigMap",
                    cm.name
                ));
            }
        }
    }
    if pod.containers.is_empty() {
        problems.push(format!("{s}: spec.template.spec.containers is empty"));
    }
    let mut names = BTreeSet::new();
    for (i, c) in pod.containers.iter().enumerate() {
        check_container(
            &format!("{s}: spec.template.spec.containers.{i}"),
            c,
            &volumes,
            problems,
        );
        if !names.insert(c.name.as_str()) {
            problems.push(format!("{s}: container name {:?} is not unique", c.name));
        }
    }
}

fn check_container(
    at: &str,
    c: &Container,
    volumes: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    if !dns_label(&c.name) {
        problems.push(format!("{at}.name {:?} is missing or invalid", c.name));
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        problems.push(format!("{at}.image is missing"));
    }
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        if !(1..=65535).contains(&p.container_port) {
            problems.push(format!(
                "{at}.ports.{i}.containerPort {} is not a port",
                p.container_port
            ));
        }
        if let Some(n) = &p.name {
            // IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', a letter.
            let valid = dns_label(n) && n.len() <= 15 && n.bytes().any(|b| b.is_ascii_lowercase());
            if !valid || !port_names.insert(n.as_str()) {
                problems.push(format!(
                    "{at}.ports.{i}.name {n:?} is invalid or not unique"
                ));
            }
        }
    }
    let container = std::slice::from_ref(c);
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (field, probe) in probes {
        let Some(probe) = probe else { continue };
        let port = match (&probe.http_get, &probe.tcp_socket, &probe.grpc, &probe.exec) {
            (Some(h), None, None, None) => Some(h.port.clone()),
            (None, Some(t), None, None) => Some(t.port.clone()),
            (None, None, Some(g), None) => Some(IntOrString::Int(g.port)),
            (None, None, None, Some(_)) => None,
            _ => {
                problems.push(format!("{at}.{field} needs exactly one handler"));
                continue;
            }
        };
        if let Some(port) = port.filter(|p| !declares(container, p)) {
            problems.push(format!(
                "{at}.{field} port {port:?} is no containerPort of the container"
            ));
        }
    }
    let mut paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        if !volumes.contains(&m.name) {
            problems.push(format!(
                "{at}.volumeMounts.{i}.name {:?} names no volume or volumeClaimTemplate",
                m.name
            ));
        }
        if !m.mount_path.starts_with('/') || !paths.insert(m.mount_path.as_str()) {
            problems.push(format!(
                "{at}.volumeMounts.{i}.mountPath {:?} is invalid or not unique",
                m.mount_path
            ));
        }
    }
}

#[test]
fn kubernetes_manifests_fit_the_api_schema() {
    let docs = manifests();
    let problems = check(&docs);
    assert!(
        problems.is_empty(),
        "deploy/kubernetes:\n{}",
        problems.join("\n")
    );
    let kinds: BTreeSet<&str> = docs
        .iter()
        .filter_map(|d| d.value.get("kind").and_then(Value::as_str))
        .collect();
    for kind in ["Namespace", "ConfigMap", "Service", "StatefulSet"] {
        assert!(
            kinds.contains(kind),
            "no {kind} checked in deploy/kubernetes: {kinds:?}"
        );
    }
}

/// The real manifests with `edit` applied to the document of `kind` named `name`.
fn broken(kind: &str, name: &str, edit: impl FnOnce(&mut Value)) -> Vec<Doc> {
    let mut docs = manifests();
    let doc = docs
        .iter_mut()
        .find(|d| d.value["kind"] == kind && d.value["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"));
    edit(&mut doc.value);
    docs
}

fn container(set: &mut Value) -> &mut Value {
    set.pointer_mut("/spec/template/spec/containers/0").unwrap()
}

fn rename(map: &mut Value, from: &str, to: &str) {
    let map = map.as_object_mut().unwrap();
    let v = map.remove(from).unwrap_or_else(|| panic!("no {from}"));
    map.insert(to.into(), v);
}

#[test]
fn check_reports_a_misspelled_key_and_a_mismatched_selector() {
    let docs = broken("StatefulSet", "tsdb", |set| {
        rename(container(set), "readinessProbe", "readinesProbe");
        set["spec"]["selector"]["matchLabels"]["app"] = "tsdb-other".into();
    });
    let problems = check(&docs);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let key = "statefulset.yaml[0]: unknown field `spec.template.spec.containers.0.readinesProbe`";
    assert!(problems.iter().any(|p| p == key), "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("spec.selector does not match spec.template.metadata.labels")),
        "{problems:#?}"
    );
}

#[test]
fn check_reports_each_kind_of_broken_manifest() {
    type Edit = fn(&mut Value);
    let cases: [(&str, &str, Edit, &str); 11] = [
        (
            "StatefulSet",
            "tsdb",
            |s| {
                // containerPort one level too high: unknown there, and the port is then 0.
                let c = container(s);
                let port = c["ports"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("containerPort")
                    .unwrap();
                c["containerPort"] = port;
            },
            "unknown field `spec.template.spec.containers.0.containerPort`",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| s["kind"] = "Deployment".into(),
            "unknown apiVersion/kind",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| s["spec"]["serviceName"] = "nope".into(),
            "names no Service",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| s["spec"]["serviceName"] = "tsdb".into(),
            "is not headless",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| {
                container(s)["volumeMounts"][0]["name"] = "date".into();
            },
            "names no volume or volumeClaimTemplate",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| {
                container(s)["livenessProbe"]["httpGet"]["port"] = "htp".into();
            },
            "livenessProbe port String(\"htp\") is no containerPort",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| {
                container(s)["readinessProbe"]["httpGet"]["port"] = 9090.into();
            },
            "readinessProbe port Int(9090) is no containerPort",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| {
                container(s).as_object_mut().unwrap().remove("image");
            },
            "containers.0.image is missing",
        ),
        (
            "StatefulSet",
            "tsdb",
            |s| {
                s["metadata"].as_object_mut().unwrap().remove("name");
            },
            "metadata.name is missing",
        ),
        (
            "Service",
            "tsdb",
            |s| s["spec"]["selector"]["app"] = "other".into(),
            "matches no pod template",
        ),
        (
            "Service",
            "tsdb",
            |s| s["spec"]["ports"][0]["targetPort"] = "web".into(),
            "targetPort String(\"web\")",
        ),
    ];
    for (kind, name, edit, expected) in cases {
        let problems = check(&broken(kind, name, edit));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{kind} {name}: no problem containing {expected:?} in {problems:#?}"
        );
    }
}

#[test]
fn dns_names_and_selectors() {
    assert!(dns_label("tsdb-headless") && !dns_label("Tsdb") && !dns_label("-a") && !dns_label(""));
    assert!(dns_subdomain("tsdb.config") && !dns_subdomain("tsdb..config"));
    let labels = BTreeMap::from([("app".to_owned(), "tsdb".to_owned())]);
    let sel = |v: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_owned(), v.to_owned())])),
        ..Default::default()
    };
    assert_eq!(selects(&sel("tsdb"), &labels), Ok(true));
    assert_eq!(selects(&sel("x"), &labels), Ok(false));
    assert!(selects(&LabelSelector::default(), &labels).is_err());
}
