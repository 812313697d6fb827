//! Every word the console shows, in English and Simplified Chinese (DNSPod GM customers).
//!
//! One table: each entry names a text and gives it in both languages, so a page can never
//! show a text one language lacks. The language comes from the switch's cookie, else the
//! browser's `Accept-Language`.

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }

    /// The value of the switch and its cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The page's `lang` attribute.
    pub fn html_tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-Hans",
        }
    }

    /// The language's own name, on the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Lang> {
        match tag {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The first of the browser's languages (by weight, then order) the console speaks.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut ranked: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.trim().split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let weight = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                let lang = if tag == "zh" || tag.starts_with("zh-") {
                    Lang::Zh
                } else if tag == "en" || tag.starts_with("en-") {
                    Lang::En
                } else {
                    return None;
                };
                (weight > 0.0).then_some((weight, order, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.first().map(|(_, _, lang)| *lang)
    }
}

macro_rules! texts {
    ($($name:ident: $en:literal, $zh:literal;)*) => {
        /// The console's texts in one language.
        #[derive(Debug)]
        pub(crate) struct Texts {
            $(pub $name: &'static str,)*
        }

        const EN: Texts = Texts { $($name: $en,)* };
        const ZH: Texts = Texts { $($name: $zh,)* };

        #[cfg(test)]
        pub(crate) fn every_text(texts: &Texts) -> Vec<(&'static str, &'static str)> {
            vec![$((stringify!($name), texts.$name),)*]
        }
    };
}

texts! {
    actions: "Actions", "操作";
    all_statuses: "All", "全部";
    approvals: "Approvals", "已批准";
    approve: "Approve", "批准";
    automatic_dns: "Checked automatically (DNS managed by the product)", "自动验证（由平台管理 DNS 记录）";
    back_home: "Back to the console", "返回控制台";
    back_to_certificate: "Back to the certificate", "返回证书";
    back_to_certificates: "Back to my certificates", "返回我的证书";
    bulk_account: "Every certificate of account", "该账号的全部证书";
    bulk_ids: "Or certificate ids, one per line", "或证书 ID，每行一个";
    bulk_title: "Bulk revocation", "批量吊销";
    bulk_too_many: "Paste at most 10,000 ids here; use certctl bulk-revoke --ids-file for more.", "此处最多粘贴 10,000 个 ID；更多请使用 certctl bulk-revoke --ids-file。";
    certificate: "Certificate", "证书详情";
    certificate_id: "Certificate id", "证书 ID";
    chain: "Certificate chain", "证书链";
    choose_algorithm: "Choose a key algorithm.", "请选择密钥算法。";
    choose_decision: "Choose approve or reject.", "请选择批准或驳回。";
    choose_reason: "Choose a revocation reason.", "请选择吊销原因。";
    comment: "Comment", "审核意见";
    connection_lost: "The connection was lost; retrying…", "连接已断开，正在重试……";
    csr_pem: "CSR (PEM)", "CSR（PEM 格式）";
    csrf_failed: "This form has expired or did not come from this console. Reload the page and try again.", "表单已过期或并非来自本控制台，请刷新页面后重试。";
    deadline: "Deadline", "截止时间";
    delete: "Delete", "删除";
    description: "Description", "描述";
    description_hint: "Why the certificate is revoked; required where a reviewer decides.", "吊销原因说明；需人工审核时必填。";
    details: "Details", "详情";
    dev_sign_in_intro: "Development sign-in: choose an identity that make run created. In production the console trusts the Authorization header set by your identity-aware proxy.", "开发环境登录：请选择 make run 创建的身份。生产环境中，控制台信任身份代理设置的 Authorization 请求头。";
    document_file: "Stamped document", "盖章文件";
    document_missing: "Choose the scanned document to upload.", "请选择要上传的扫描件。";
    document_received: "Document received", "文件已收到";
    document_rules: "At most 1.4 MiB (1,468,006 bytes), uploaded once. Formats:", "不超过 1.4 MiB（1,468,006 字节），仅可上传一次。格式：";
    document_wrong_format: "This format is not accepted here. Accepted:", "不支持该文件格式。支持的格式：";
    document_too_large: "The document is larger than 1.4 MiB (1,468,006 bytes): scan it again at a lower resolution, or save it as JPG, and upload that.", "文件超过 1.4 MiB（1,468,006 字节）：请降低分辨率重新扫描，或另存为 JPG 后再上传。";
    domain: "Domain", "域名";
    domains: "Domains", "域名";
    domains_hint: "One per line; every domain must be under the original's.", "每行一个；须属于原证书的域名。";
    download: "Download", "下载";
    download_pkcs12: "Download PKCS#12", "下载 PKCS#12";
    download_template: "Download the application template (PDF)", "下载申请模板（PDF）";
    downloads: "Downloads", "下载";
    downloads_unavailable: "Downloads are not available for this certificate in its current status.", "该证书当前状态下不可下载。";
    due_by: "Due by", "处理期限";
    expires: "Expires", "到期时间";
    failed_review_rejected: "The revocation was rejected by a reviewer; the certificate is issued again.", "吊销申请被审核驳回，证书已恢复为已签发状态。";
    failed_validation_expired: "Domain ownership was not proven in time; the revocation failed and the certificate is issued again.", "未在期限内完成域名验证，吊销失败，证书已恢复为已签发状态。";
    file_certificate: "Certificate (.crt)", "证书（.crt）";
    file_chain: "Chain (.chain.crt)", "证书链（.chain.crt）";
    file_content: "File content", "文件内容";
    file_fullchain: "Certificate and chain, for Nginx (.fullchain.crt)", "证书及证书链，适用于 Nginx（.fullchain.crt）";
    file_key: "Private key (.key)", "私钥（.key）";
    file_url: "File URL", "文件地址";
    filter: "Filter", "筛选";
    first_page: "First page", "第一页";
    found: "found", "已找到";
    gateway_unreachable: "The certificate service could not be reached.", "无法连接证书服务。";
    history: "History", "操作记录";
    issued: "Issued", "签发时间";
    key: "Key", "密钥";
    key_algorithm: "Algorithm", "算法";
    key_csr: "Paste a CSR", "粘贴 CSR";
    key_generated: "Generate a new key online", "在线生成新密钥";
    key_original: "The original CSR (same key)", "使用原 CSR（相同密钥）";
    key_password: "Private key password (optional)", "私钥密码（可选）";
    key_password_warning: "The password is never stored and cannot be recovered: keep it safe. Do not set one for keys deployed to CLB or CDN, which cannot use an encrypted key.", "密码不会被保存，遗失后无法找回，请妥善保管。部署到 CLB 或 CDN 的证书请勿设置私钥密码，这些服务无法使用加密的私钥。";
    key_source: "Key", "密钥来源";
    kind: "Kind", "类型";
    kind_reissue: "Reissue", "重新签发";
    kind_revocation: "Revocation", "吊销";
    main_navigation: "Main", "主导航";
    method_dns: "DNS: add a TXT record", "DNS：添加 TXT 记录";
    method_file: "File: serve a file over HTTP", "文件：通过 HTTP 提供验证文件";
    my_certificates: "My certificates", "我的证书";
    next_page: "Next page", "下一页";
    no_certificates: "No certificates here.", "暂无证书。";
    no_identities: "No development identities were found. Run make run first.", "未找到开发身份，请先运行 make run。";
    no_tasks: "No tasks are waiting.", "暂无待审核任务。";
    not_found: "There is no such page or certificate.", "页面或证书不存在。";
    not_found_title: "Not found", "未找到";
    not_found_yet: "not found yet", "尚未找到";
    nothing_to_take: "No task is waiting for you right now.", "当前没有可领取的任务。";
    open_document: "Open the document", "打开文件";
    pages: "Pages", "分页";
    path: "Path", "流程";
    path_automatic: "Revoked once automatic validation passes", "自动验证通过后吊销";
    path_document: "Manual review once the stamped document is in", "上传盖章文件后人工审核";
    path_domain_validation: "Domain-ownership validation, then revoked", "域名所有权验证通过后吊销";
    path_immediate: "Revoked at once", "立即吊销";
    path_review: "Manual review", "人工审核";
    pem_for: "PEM, for Nginx and Apache", "PEM 格式，适用于 Nginx 和 Apache";
    pkcs12_for: "PKCS#12, for IIS and Tomcat", "PKCS#12 格式，适用于 IIS 和 Tomcat";
    pkcs12_password: "Password for the archive", "证书文件密码";
    probes_saw: "What the probes saw", "验证结果";
    product: "Product", "产品";
    prove_ownership: "Prove you own each domain", "验证域名所有权";
    proven: "Proven", "已验证";
    publish: "Publish", "需添加的内容";
    queued: "Queued", "提交时间";
    reason: "Reason", "吊销原因";
    reason_affiliation_changed: "Affiliation changed", "隶属关系变更";
    reason_cessation: "Cessation of operation", "停止运营";
    reason_code: "Reason code", "错误代码";
    reason_key_compromise: "Key compromise", "私钥泄露";
    reason_superseded: "Superseded", "已被替代";
    reason_unspecified: "Unspecified", "未指定";
    record_name: "Host record", "主机记录";
    record_type: "Type", "记录类型";
    record_value: "Value", "记录值";
    refused_title: "Not possible", "无法完成";
    reissue: "Reissue", "重新签发";
    reissue_in_progress: "Reissue in progress", "重新签发进行中";
    reissue_reason: "Reason for the reissue", "重新签发原因";
    reissue_title: "Reissue request", "重新签发申请";
    reissued_as: "Reissued as", "重新签发为";
    reissued_from: "Reissued from", "重新签发自";
    reject: "Reject", "驳回";
    rejected_by: "Rejected by", "驳回人";
    requested: "Requested", "申请时间";
    requester: "Requested by", "申请账号";
    results: "Results", "结果";
    retrying: "Trying again with the same request…", "正在以同一请求重试……";
    try_again_shortly: "Try again in a moment.", "请稍后再试。";
    review: "Review", "审核";
    review_queue: "Review queue", "审核队列";
    review_task: "Review task", "审核任务";
    revocation_done: "The certificate is revoked and listed on its CA's revocation list.", "证书已吊销，并已列入签发机构的吊销列表。";
    revocation_title: "Revocation", "吊销进度";
    revoke: "Revoke", "吊销";
    revoke_title: "Revocation request", "吊销申请";
    revoke_warning: "A submitted revocation cannot be cancelled, and the certificate cannot be downloaded from now on.", "吊销申请提交后不可撤回，且证书将无法下载。";
    revoked_at: "Revoked", "吊销时间";
    serial: "Serial number", "序列号";
    show_pem: "Show PEM", "显示 PEM";
    sign_in: "Sign in", "登录";
    sign_in_as: "Sign in as", "登录为";
    sign_in_failed: "That identity could not sign in: its token is missing, expired or not signed by a trusted key.", "该身份无法登录：令牌缺失、已过期或签名不受信任。";
    sign_out: "Sign out", "退出";
    signed_out: "You are not signed in. Sign in through your organisation's sign-in page.", "您尚未登录，请通过贵单位的登录页面登录。";
    signed_out_title: "Not signed in", "未登录";
    single_domain_hint: "This product binds a single domain: give exactly one.", "该产品仅支持绑定一个域名。";
    skip_to_content: "Skip to content", "跳至正文";
    stamp_and_scan: "Print it, fill it in, stamp it with your organisation's seal, and scan it.", "打印并填写，加盖单位公章后扫描。";
    stamped_document: "Stamped document", "盖章文件";
    state: "State", "状态";
    status: "Status", "状态";
    status_deleted: "Deleted", "已删除";
    status_expired: "Expired", "已过期";
    status_issued: "Issued", "已签发";
    status_reissue_pending: "Reissue pending", "重新签发中";
    status_revocation_pending: "Revocation pending", "吊销中";
    status_revoked: "Revoked", "已吊销";
    submit_bulk: "Revoke them all", "全部吊销";
    submit_reissue: "Request the reissue", "提交重新签发";
    submit_revocation: "Request the revocation", "提交吊销申请";
    system: "certflow", "系统";
    take_next: "Take the next task", "领取下一个任务";
    unknown: "Unknown", "未知";
    upload: "Upload", "上传";
    valid_from: "Valid from", "生效时间";
    validate_now: "Validate now", "立即验证";
    validation_method: "How domains are proven", "域名验证方式";
    validation_method_hint: "Used where the certificate's path needs domain validation.", "仅在需要域名验证时使用。";
    waiting: "Waiting", "等待中";
    waiting_for_reviewer: "Waiting for a reviewer.", "等待审核。";
    waiting_tasks: "Waiting tasks", "待审核任务";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_exists_in_both_languages() {
        for (name, text) in every_text(&EN).into_iter().chain(every_text(&ZH)) {
            assert!(!text.trim().is_empty(), "{name} is empty");
        }
        let english = every_text(&EN);
        let chinese = every_text(&ZH);
        let untranslated: Vec<_> = english
            .iter()
            .zip(&chinese)
            .filter(|((_, en), (_, zh))| en == zh && en.chars().any(|c| c.is_ascii_lowercase()))
            .map(|((name, _), _)| *name)
            .collect();
        assert!(untranslated.is_empty(), "not translated: {untranslated:?}");
    }

    #[test]
    fn the_browser_language_picks_the_page_language() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr;q=1, zh-Hans;q=0.5, en;q=0.4"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("de"), None);
        assert_eq!(Lang::from_accept_language("zh;q=0, en"), Some(Lang::En));
    }
}
