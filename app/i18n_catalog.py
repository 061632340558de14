"""Interface translations: one dict per language, keyed by the English text.

Why plain dicts and not Babel/gettext: two languages, a few hundred short strings, and
no build step (no .po -> .mo compilation, no extraction tool to run before a release).
A message id is the English text itself, so English needs no catalog and a missing
translation falls back to readable English. ``{name}`` placeholders are ``str.format``
fields and must appear unchanged in the translation (``tests/test_i18n.py`` checks).
Add strings anywhere in ``ZH``; keep related ones together.
"""

from __future__ import annotations

ZH: dict[str, str] = {
    # Errors the server answers with a status (app/handlers.py, app/errors.py)
    "The server's disk is full, so nothing was changed; try again later or tell an administrator.": (
        "服务器磁盘已满，未做任何更改；请稍后重试或告知管理员。"
    ),
    "The server cannot write its files (read-only or not permitted); tell an administrator.": (
        "服务器无法写入文件（只读或无权限）；请告知管理员。"
    ),
    "The database is not answering; try again in a few seconds.": "数据库没有响应；请几秒后重试。",
    "The server is busy; try again in a few seconds.": "服务器繁忙；请几秒后重试。",
    "A value in the request cannot be stored (out of range, or not valid text).": (
        "请求中的某个值无法保存（超出范围或不是有效文本）。"
    ),
    "Someone changed this at the same time; reload the page and try again.": (
        "有人同时修改了此内容；请刷新页面后重试。"
    ),
    "Some values in the request are not valid.": "请求中的某些值无效。",
    "no document with id {id}": "没有编号为 {id} 的文档",
    "no collection named {name!r}": "没有名为 {name!r} 的知识库",
    "no collection with id {id}": "没有编号为 {id} 的知识库",
    # Navigation
    "Search": "搜索",
    "Ask": "提问",
    "Documents": "文档",
    "Upload": "上传",
    "Admin": "管理",
    "Collections": "知识库",
    "Users": "用户",
    "API tokens": "API 令牌",
    "Jobs": "任务",
    "Log in": "登录",
    "Log out": "退出登录",
    "Language": "语言",
    # Search page
    "Ask a question in any language…": "用任意语言提问…",
    "An English question finds Chinese passages, and a Chinese question finds English ones.": (
        "用英文提问能找到中文段落，用中文提问也能找到英文段落。"
    ),
    "Filters": "筛选",
    "Collection": "知识库",
    "Document type": "文档类型",
    "Any": "不限",
    "PDF": "PDF",
    "Markdown": "Markdown",
    "Chinese": "中文",
    "FAQ": "常见问题",
    "Also in": "另见于",
    "Reranking is unavailable; the results are in first-stage order.": "重排序服务不可用，结果按初排顺序显示。",
    "Exam question": "试题",
    "Tags": "标签",
    "Kind": "段落类型",
    "Section": "章节",
    "Documents with any of the chosen tags": "带有任一所选标签的文档",
    "optional, separated by commas": "可选，用逗号分隔",
    "e.g. handbook, onboarding": "例如：手册，入职",
    "English": "英文",
    "No passages found.": "未找到相关段落。",
    "{n} results in {ms} ms": "找到 {n} 条结果，用时 {ms} 毫秒",
    "Page {n}": "第 {n} 页",
    "page {n}": "第 {n} 页",
    "Open at page {n}": "在第 {n} 页打开",
    "Open section": "打开所在章节",
    "Show the whole passage": "显示整段",
    "Show less": "收起",
    "Score": "相关度",
    "score": "相关度",
    "Previous": "上一页",
    "Next": "下一页",
    # Ask page
    "Best answers": "最佳答案",
    "Most relevant sentences are highlighted.": "最相关的句子已高亮显示。",
    "Cite": "引用",
    "Link to this passage": "此段落的链接",
    "An answer written by an assistant will appear here in a later version.": (
        "后续版本将在此处显示由智能助手撰写的回答。"
    ),
    "Answers here are extractive: the highlighted sentences in the passages below, quoted "
    "from your documents as they are written.": (
        "这里的答案是抽取式的：即下方段落中高亮显示的句子，按原文摘自您的文档。"
    ),
    "To have an assistant write an answer from these passages, set KB_LLM_URL and "
    "KB_LLM_MODEL (see “Written answers (LLM)” in the README).": (
        "如需由助手根据这些段落撰写回答，请设置 KB_LLM_URL 和 KB_LLM_MODEL"
        "（参见 README 中的“Written answers (LLM)”一节）。"
    ),
    "Written answer": "撰写的回答",
    "Written by {model} from the numbered passages below.": "由 {model} 根据下方编号的段落撰写。",
    "Writing…": "正在撰写…",
    "Stop": "停止",
    "Write an answer": "撰写回答",
    "Stopped: the answer above is incomplete.": "已停止：上面的回答不完整。",
    "The connection to the assistant broke; the answer above is incomplete.": (
        "与助手的连接中断；上面的回答不完整。"
    ),
    "No answer could be written.": "未能撰写回答。",
    # Documents
    "Status": "状态",
    "queued": "排队中",
    "parsing": "解析中",
    "embedding": "向量化中",
    "ready": "就绪",
    "failed": "失败",
    "running": "运行中",
    "done": "完成",
    "Chunks": "分块数",
    "Pages": "页数",
    "Size": "大小",
    "Uploaded by": "上传者",
    "Date": "日期",
    "Retry": "重试",
    "Delete": "删除",
    "Re-index": "重新索引",
    "Delete {name}?": "确定删除“{name}”吗？",
    "Sections": "章节",
    "Original": "原文件",
    "Download original": "下载原文件",
    "Reason": "原因",
    # Upload
    "Upload documents": "上传文档",
    "Drop files here or click to choose": "将文件拖到此处，或点击选择文件",
    "Maximum size per file: {size}": "单个文件大小上限：{size}",
    "accepted": "已接收",
    "duplicate": "重复",
    "rejected": "已拒绝",
    # Admin
    "Create": "创建",
    "Rename": "重命名",
    "Description": "描述",
    "Embedder": "嵌入器",
    "Dimension": "维度",
    "Model": "模型",
    "Role": "角色",
    "admin": "管理员",
    "editor": "编辑者",
    "reader": "读者",
    "Disabled": "已停用",
    "Enable": "启用",
    "Disable": "停用",
    "Save": "保存",
    "Cancel": "取消",
    "Name": "名称",
    "Created": "创建时间",
    "Last used": "上次使用",
    "Revoke": "吊销",
    "Revoked": "已吊销",
    "Change model": "更换模型",
    "Query instruction": "查询指令",
    "Re-embed every document of {name} with the new model?": "用新模型重新嵌入 {name} 的所有文档？",
    "Knowledge base": "团队知识库",
    "Enabled": "已启用",
    "Copy this token now: it is shown only once.": "请立即复制此令牌：它只会显示这一次。",
    "Attempts": "尝试次数",
    "Error": "错误",
    # Log in
    "Username": "用户名",
    "Password": "密码",
    "Invalid username or password.": "用户名或密码错误。",
    "Too many attempts; try again in {seconds} seconds.": "尝试次数过多，请在 {seconds} 秒后重试。",
    # Errors
    "Page not found": "页面不存在",
    "You do not have permission to do this.": "你没有执行此操作的权限。",
    "Your session expired; reload the page and try again.": "会话已过期，请刷新页面后重试。",
    # Upload rejections and request-body limits (app/documents/service.py, app/http_limits.py)
    "file is larger than the limit of {size}": "文件超过了 {size} 的大小上限",
    "the file is empty (0 bytes)": "文件是空的（0 字节）",
    "unsupported file type {ext}: supported types are {kinds}": (
        "不支持的文件类型 {ext}：支持的类型为 {kinds}"
    ),
    "the server's storage is full, so the file was not stored; try again after an administrator frees space": (
        "服务器存储空间已满，文件未保存；请在管理员释放空间后重试"
    ),
    "the server cannot write to its storage (read-only or not permitted), so the file was not stored; tell an administrator": (
        "服务器无法写入存储（只读或没有写入权限），文件未保存；请告知管理员"
    ),
    "The request is larger than the limit of {size}.": "请求超过了 {size} 的大小上限。",
    "The upload is larger than the limit of {size} per request; send fewer files at a time.": (
        "本次上传超过了每次请求 {size} 的上限；请分几次上传，每次少传一些文件。"
    ),
    "A file is larger than the limit of {size} per file.": "有文件超过了单个文件 {size} 的大小上限。",
    # Sessions, login protection, user admin (app/auth/pages.py, admin/users.html, admin/tokens.html)
    "This form was sent from another site.": "此表单来自其他网站，已拒绝。",
    "Your sessions": "你的登录会话",
    "Every browser where you are logged in. Ending a session logs that browser out at once; API tokens are not affected.": (
        "你已登录的每个浏览器。结束某个会话会立即让该浏览器退出登录；API 令牌不受影响。"
    ),
    "Logged in": "登录时间",
    "Expires": "过期时间",
    "Address": "地址",
    "Browser": "浏览器",
    "This browser": "当前浏览器",
    "End": "结束",
    "Log out everywhere": "在所有设备上退出登录",
    "Sessions": "会话",
    "Disabling a user logs them out everywhere and revokes their API tokens. Enabling them again restores neither: they log in again and create new tokens. A new password logs them out everywhere but keeps their API tokens.": (
        "停用用户会让其在所有设备上退出登录，并吊销其全部 API 令牌。再次启用不会恢复这两者：用户需要重新登录并创建新令牌。"
        "设置新密码会让其在所有设备上退出登录，但保留其 API 令牌。"
    ),
    # Ingest waiting out an outage (app/jobs/service.py: WAITING, RETRYING and the causes)
    "waiting: {cause}; next try at {time} UTC": "等待中：{cause}；将于 UTC {time} 重试",
    "retrying: {reason}; next try at {time} UTC": "重试中：{reason}；将于 UTC {time} 再次尝试",
    "the disk is full": "磁盘已满",
    "the disk cannot be written": "磁盘无法写入",
    "the database is unavailable": "数据库暂时无法访问",
    "the database is busy": "数据库繁忙",
    # Document view of a long document, shown in parts
    "This document is long, so it is shown in parts.": "此文档较长，分部分显示。",
    "Parts of this document": "文档各部分",
    "Part {n} of {count}": "第 {n} 部分，共 {count} 部分",
    "First part": "第一部分",
    "Previous part": "上一部分",
    "Next part": "下一部分",
    "Last part": "最后一部分",
    # A search or question nothing matches well (weak_match; search.html, ask.html)
    "Nothing in the knowledge base matches this well; the closest passages are below.": (
        "知识库中没有与此很好匹配的内容；下面是最接近的段落。"
    ),
    # Feedback and insights (app/feedback; _macros.html thumbs, admin/insights.html)
    "Helpful?": "有帮助吗？",
    "Helpful": "有帮助",
    "Not helpful": "没有帮助",
    "Thanks for your feedback.": "感谢您的反馈。",
    "this rating cannot be stored": "无法保存此评价",
    "no passage with that id": "没有该编号的段落",
    "Insights": "洞察",
    "Last {n} days": "最近 {n} 天",
    "Show": "显示",
    "Export as graded queries (JSON lines)": "导出为评测查询（JSON Lines）",
    "Questions": "问题数",
    "Weak-match rate": "弱匹配率",
    "Ratings": "评价",
    "Questions per day": "每日问题数",
    "Weak-match rate per day": "每日弱匹配率",
    "Ratings per day": "每日评价",
    "What the knowledge base is missing": "知识库缺少的内容",
    "Questions with a weak match or rated down come first: they are what the FAQ does not answer yet.": (
        "弱匹配或被评为没有帮助的问题排在前面：这些是常见问题解答尚未覆盖的内容。"
    ),
    "No questions yet.": "还没有问题。",
    "Question": "问题",
    "Asked": "提问次数",
    "Weak matches": "弱匹配次数",
    "Last asked": "最近提问",
    "Needs an answer": "需要补充答案",
    "{n} more questions are in the export.": "另有 {n} 个问题在导出文件中。",
    # Written answers (app/answer: the API, kb ask, the Ask page)
    "Nothing in the knowledge base answers this; the closest passages are below.": (
        "知识库中没有能回答这个问题的内容；下面是最接近的段落。"
    ),
    "Written answers are off: set KB_LLM_URL (the LLM server's base URL, ending in /v1) "
    "and KB_LLM_MODEL to enable them.": (
        "未启用生成式回答：请设置 KB_LLM_URL（LLM 服务器的基础地址，以 /v1 结尾）和 "
        "KB_LLM_MODEL 以启用。"
    ),
    "The answer reached its length limit (KB_LLM_MAX_TOKENS) and is cut off.": (
        "回答达到长度上限（KB_LLM_MAX_TOKENS），已被截断。"
    ),
    "Sources:": "来源：",
    "Closest passages:": "最接近的段落：",
    "Image (OCR)": "图片（OCR）",
    "Accepted: {types}": "支持的类型：{types}",
    # --- ingest reasons: Word (ingest/parse/docx.py) ---
    # --- ingest reasons: PowerPoint, HTML, spreadsheets (ingest/parse/{pptx,html,sheet}.py) ---
    # --- ingest reasons: Office zip safety (ingest/parse/zipsafe.py) ---
    "The file is password-protected: remove the password (save an unprotected copy) "
    "and upload it again.": "文件有密码保护：请去掉密码（另存一份无保护的副本）后重新上传。",
    "The file is in the old binary Office format (.doc, .ppt or .xls): save it as "
    ".docx, .pptx or .xlsx and upload it again.": (
        "文件是旧版二进制 Office 格式（.doc、.ppt 或 .xls）：请另存为 .docx、.pptx 或 "
        ".xlsx 后重新上传。"
    ),
    "The file is named {suffix} but is not a {label} file (it is not an Office Open XML "
    "package); it may be damaged or mislabelled. Save it again as {suffix} and upload it.": (
        "文件名为 {suffix}，但不是 {label} 文件（不是 Office Open XML 包）；文件可能已损坏或"
        "扩展名有误。请重新另存为 {suffix} 后上传。"
    ),
    "The file has too many parts ({count}) to be a real document; it was not read.": (
        "文件包含的部件过多（{count} 个），不像真实文档；未读取。"
    ),
    "The file unpacks to more than {limit_mb} MB; it was not read (it may be a zip bomb).": (
        "文件解压后超过 {limit_mb} MB；未读取（可能是压缩炸弹）。"
    ),
    "A part of the file is compressed more than {ratio}:1, as only zip bombs are; "
    "it was not read.": "文件中某个部件的压缩比超过 {ratio}:1，只有压缩炸弹才会如此；未读取。",
    "The file is named {suffix} but is a PDF. Rename it to .pdf and upload it again.": (
        "文件名为 {suffix}，但实际是 PDF。请改名为 .pdf 后重新上传。"
    ),
    # --- ingest reasons: OCR (ingest/parse/ocr.py) ---
}

CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}
