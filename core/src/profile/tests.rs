use super::*;

fn file(path: &str, text: &str) -> ProfileFile {
    ProfileFile {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

fn parse(config: &str, credentials: &str) -> Result<ProfileSet, ProfileError> {
    ProfileSet::parse(
        Some(&file("config", config)),
        Some(&file("credentials", credentials)),
    )
}

#[test]
fn reads_profiles_sso_sessions_and_sub_properties() {
    let set = parse(
        "# a comment\n\
         [default]\n\
         region = eu-west-1\n\
         \n\
         [profile dev] ; trailing comment\n\
         role_arn = arn:aws:iam::123456789012:role/dev\n\
         Source_Profile = default\n\
         s3 =\n\
         \x20 max_concurrent_requests = 10\n\
         \x20 addressing_style = path\n\
         \n\
         [ sso-session corp ]\n\
         sso_start_url = https://corp.awsapps.com/start\n\
         sso_region = us-east-1\n\
         \n\
         [services local]\n\
         sts =\n\
         \x20 endpoint_url = http://127.0.0.1:5000\n\
         [unprefixed]\n\
         region = nowhere\n",
        "[default]\n\
         aws_access_key_id = AKIDDEFAULT\n\
         aws_secret_access_key = secret\n",
    )
    .expect("valid files");
    let default = set.profile("default").expect("default");
    assert_eq!(default.get("region"), Some("eu-west-1"));
    assert_eq!(default.get("aws_access_key_id"), Some("AKIDDEFAULT"));
    let dev = set.profile("dev").expect("dev");
    assert_eq!(
        dev.get("source_profile"),
        Some("default"),
        "keys are lower-cased"
    );
    let s3 = dev.property("s3").expect("s3");
    assert_eq!(s3.sub["max_concurrent_requests"], "10");
    assert_eq!(s3.sub["addressing_style"], "path");
    assert_eq!(
        set.sso_session("corp").and_then(|s| s.get("sso_region")),
        Some("us-east-1")
    );
    assert!(
        set.profile("unprefixed").is_none(),
        "config needs `profile `"
    );
    assert!(set.profile("local").is_none(), "services are not profiles");
}

#[test]
fn the_credentials_file_wins_and_sections_merge() {
    let set = parse(
        "[profile a]\nregion = us-east-1\naws_access_key_id = FROMCONFIG\n[profile a]\noutput = json\n",
        "[a]\naws_access_key_id = FROMCREDENTIALS\n",
    )
    .expect("valid");
    let a = set.profile("a").expect("a");
    assert_eq!(a.get("aws_access_key_id"), Some("FROMCREDENTIALS"));
    assert_eq!(a.get("region"), Some("us-east-1"));
    assert_eq!(a.get("output"), Some("json"));
}

#[test]
fn continuation_lines_extend_a_value() {
    let set = parse("[default]\npolicy = first\n  second\n", "").expect("valid");
    assert_eq!(
        set.profile("default").and_then(|p| p.get("policy")),
        Some("first\nsecond")
    );
}

#[test]
fn missing_files_and_empty_values() {
    let set = ProfileSet::parse(None, None).expect("nothing to read");
    assert!(set.is_empty());
    let set = parse("[default]\nregion =\n", "").expect("valid");
    assert_eq!(set.profile("default").and_then(|p| p.get("region")), None);
}

#[test]
fn errors_name_the_file_and_the_line_and_never_echo_secrets() {
    let cases = [
        ("region = us-east-1\n", "config", 1, "outside any section"),
        ("[default]\nregion us-east-1\n", "config", 2, "key = value"),
        ("[default\nregion = x\n", "config", 1, "never closes"),
        ("[default]\n= value\n", "config", 2, "no key"),
        ("[]\n", "config", 1, "names nothing"),
        ("[default] extra\n", "config", 1, "after a section header"),
        (
            "[default]\n  indented = x\n",
            "config",
            2,
            "continues no property",
        ),
    ];
    for (text, expected_file, line, problem) in cases {
        let error = parse(text, "").expect_err(text);
        assert_eq!(
            (error.file.as_str(), error.line),
            (expected_file, line),
            "{text:?}"
        );
        assert!(error.problem.contains(problem), "{text:?}: {error}");
    }
    let error = parse("", "[default]\naws_secret_access_key wJalrXUtnFEMI\n").expect_err("bad");
    assert_eq!((error.file.as_str(), error.line), ("credentials", 2));
    assert!(!error.to_string().contains("wJalr"), "{error}");
}

#[test]
fn debug_redacts_secret_values() {
    let set = parse(
        "",
        "[default]\naws_access_key_id = AKID\naws_secret_access_key = wJalrXUtnFEMI\naws_session_token = tokenvalue\n",
    )
    .expect("valid");
    let debug = format!("{set:?}");
    assert!(debug.contains("AKID"), "{debug}");
    assert!(
        !debug.contains("wJalr") && !debug.contains("tokenvalue"),
        "{debug}"
    );
    let debug = format!("{:?}", file("credentials", "aws_secret_access_key = wJalr"));
    assert!(!debug.contains("wJalr"), "{debug}");
}

#[test]
fn a_profile_with_credentials_of_its_own_says_which_property_gives_them() {
    let set = parse(
        "[default]\nregion = eu-west-1\n\
         [profile web]\nweb_identity_token_file = /t\n\
         [profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nweb_identity_token_file = /t\n\
         [profile sso]\nsso_session = corp\n\
         [profile process]\ncredential_process = /bin/creds\n",
        "[keys]\naws_access_key_id = AKIA\naws_secret_access_key = s\n",
    )
    .expect("valid");
    let property = |name: &str| set.profile(name).expect("there").credentials_property();
    assert_eq!(property("default"), None, "settings only");
    assert_eq!(property("web"), None, "a token file needs a role");
    assert_eq!(property("role"), Some("role_arn"));
    assert_eq!(property("sso"), Some("sso_session"));
    assert_eq!(property("process"), Some("credential_process"));
    assert_eq!(property("keys"), Some("aws_access_key_id"));
}
