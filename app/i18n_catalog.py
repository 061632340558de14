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
    # Search page: empty states, the filters' toggle (search.html); the header's menu
    "Menu": "菜单",
    "There are no documents here yet.": "这里还没有文档。",
    "Upload documents: once they are processed, they can be searched here in Chinese and "
    "English.": "上传文档：处理完成后，即可在这里用中文或英文搜索。",
    "Ask an administrator to add documents.": "请联系管理员添加文档。",
    "Type a question or some words to search for.": "请输入问题或一些关键词再搜索。",
    "No passage matches these words.": "没有与这些词匹配的段落。",
    "No passage matches these words with the chosen filters.": (
        "在所选的筛选条件下，没有与这些词匹配的段落。"
    ),
    "Clear the filters": "清除筛选条件",
    "Searching works across Chinese and English: try other words, or ask in the other "
    "language.": "搜索支持中英文互查：试试换个说法，或用另一种语言提问。",
    # API tokens page (admin/tokens.html)
    "Prefix": "前缀",
    "Copy": "复制",
    "Copied": "已复制",
    "Selected: press Ctrl+C to copy": "已选中：按 Ctrl+C 复制",
    # Jobs page (admin/jobs.html): kinds, and the messages jobs store (ingest/pipeline.py,
    # ingest/reembed.py, app/lifecycle.py). The longer formats come first: a stored
    # message is matched against them in this order.
    "Ingest": "导入",
    "Re-embed": "重新嵌入",
    "embedded {done} of {total} chunks": "已向量化 {done}/{total} 个分块",
    "embedded {done} of {total} sentences": "已向量化 {done}/{total} 个句子",
    "switched after re-embedding {done} chunks": "已重新嵌入 {done} 个分块并完成切换",
    "embedding {n} chunks": "正在向量化 {n} 个分块",
    "re-embedded {done} chunks, {left} to go": "已重新嵌入 {done} 个分块，还剩 {left} 个",
    "{n} chunks": "{n} 个分块",
    "retrying after error (attempt {attempt} of {max_attempts})": (
        "出错后重试（第 {attempt} 次，共 {max_attempts} 次）"
    ),
    "document was deleted before it was ingested": "文档在导入前已被删除",
    "no model change pending": "没有待进行的模型更换",
    "re-embedding did not converge: documents keep arriving": "重新嵌入未能完成：不断有新文档加入",
    "the new model returned {got} dimensions, not {dim}": "新模型返回了 {got} 维，而不是 {dim} 维",
    # Ingest failure reasons of PDF, Markdown and text files, and of the pipeline and its
    # sandbox (ingest/parse/{pdf,detect,markdown}.py, ingest/pipeline.py, ingest/sandbox.py)
    "The PDF is incomplete: it stops before its end marker (%%EOF), so the upload or "
    "download was probably cut off ({detail}). Upload the complete file again.": (
        "PDF 文件不完整：它在结束标记（%%EOF）之前就结束了，上传或下载可能被中断（{detail}）。"
        "请重新上传完整的文件。"
    ),
    "The PDF is damaged and cannot be read ({detail}). Download or export it again and "
    "re-upload it.": "PDF 文件已损坏，无法读取（{detail}）。请重新下载或导出后再上传。",
    "The PDF is protected by a password that is needed to open it. Remove the password "
    "(save an unprotected copy) and upload it again.": (
        "PDF 受打开密码保护。请去掉密码（另存一份无保护的副本）后重新上传。"
    ),
    "The PDF has no pages. Export the document again and re-upload it.": (
        "PDF 没有任何页面。请重新导出文档后再上传。"
    ),
    "The PDF is encrypted with AES, which this server cannot decrypt (the 'cryptography' "
    "package is missing). Ask an administrator to install it, or upload an unencrypted "
    "copy.": (
        "PDF 使用 AES 加密，本服务器无法解密（缺少 'cryptography' 软件包）。"
        "请联系管理员安装，或上传未加密的副本。"
    ),
    "The PDF has no text layer: it looks scanned (pages are images) and needs OCR. Run it "
    "through OCR (for example 'ocrmypdf') and upload the result.": (
        "该 PDF 没有文字层：看起来是扫描件（页面是图片），需要 OCR。"
        "请先用 OCR 工具（例如 'ocrmypdf'）处理后上传结果。"
    ),
    "The PDF's pages could not be read: the file is damaged, or its content streams are "
    "over the size limit. Export or download it again and re-upload it.": (
        "无法读取 PDF 的页面：文件已损坏，或其内容流超过大小上限。请重新导出或下载后再上传。"
    ),
    "The PDF's pages are blank: they have no text and no images. Check that the right "
    "file was uploaded.": "PDF 的页面是空白的：没有文字也没有图片。请检查上传的文件是否正确。",
    "The PDF's text could not be extracted: its pages draw no images, but their content "
    "streams are damaged, over the size limit, or draw text as shapes only. Export the "
    "document again (as PDF with text) and re-upload it.": (
        "无法提取 PDF 的文字：页面中没有图片，但其内容流已损坏、超过大小上限，"
        "或只把文字画成了图形。请重新导出文档（导出为带文字的 PDF）后再上传。"
    ),
    "The file is empty: it contains no text. Upload a file with content.": (
        "文件是空的：其中没有文字。请上传有内容的文件。"
    ),
    "The file is named .pdf but is not a PDF (it does not start with %PDF-); it may be "
    "damaged or mislabelled. Export it again as PDF and re-upload it.": (
        "文件名为 .pdf，但不是 PDF（不以 %PDF- 开头）；文件可能已损坏或扩展名有误。"
        "请重新导出为 PDF 后再上传。"
    ),
    "Unsupported file type ({shown}). Supported types are {supported}.": (
        "不支持的文件类型（{shown}）。支持的类型为 {supported}。"
    ),
    "without an extension": "无扩展名",
    "The file contains no text, only Markdown markup (rules or front matter). Add content "
    "and upload it again.": (
        "文件中没有文字，只有 Markdown 标记（分隔线或前置元数据）。请添加内容后重新上传。"
    ),
    "the stored original is missing; upload the file again": "存储的原文件丢失；请重新上传该文件",
    "no text was found in the file": "文件中没有找到文字",
    "a passage cannot be embedded: {detail}": "有段落无法向量化：{detail}",
    "reading the file needed more than {memory_mb} MB of memory and was stopped; it may be "
    "malformed (a decompression bomb, for example)": (
        "读取文件所需的内存超过 {memory_mb} MB，已停止；文件可能格式有误（例如是解压炸弹）"
    ),
    "the parser stopped unexpectedly while reading the file ({reason}); the file may be "
    "malformed, or need more than {memory_mb} MB of memory": (
        "解析程序在读取文件时意外停止（{reason}）；文件可能格式有误，或需要超过 {memory_mb} MB 的内存"
    ),
    "reading the file took longer than {timeout_s} s and was stopped; it may be malformed "
    "or far larger than it looks": (
        "读取文件超过 {timeout_s} 秒，已停止；文件可能格式有误，或远比看上去大"
    ),
    "exit status {code}": "退出状态 {code}",
    "signal {name}": "信号 {name}",
    # Users and tokens (app/auth/service.py, app/auth/passwords.py, app/auth/pages.py)
    "the username {username!r} is taken": "用户名 {username!r} 已被占用",
    "a username is 1–100 letters, digits, '.', '_', '-' or '@'": (
        "用户名须为 1–100 个字母、数字或“.”“_”“-”“@”"
    ),
    "a password needs at least {n} characters": "密码至少需要 {n} 个字符",
    "the last admin cannot lose the admin role": "最后一位管理员不能失去管理员角色",
    "the last admin cannot be disabled": "最后一位管理员不能被停用",
    "no such user": "没有该用户",
    "no such token": "没有该令牌",
    "no such session": "没有该会话",
    "no such job": "没有该任务",
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
    "The Word file is damaged and cannot be read ({detail}). Open it in Word, save it "
    "again as .docx and upload it.": (
        "Word 文件已损坏，无法读取（{detail}）。请用 Word 打开，重新另存为 .docx 后上传。"
    ),
    "The Word document contains no text (it may hold only images or scanned pages). "
    "Upload a document with text, or a PDF of the scan.": (
        "Word 文档中没有文字（可能只有图片或扫描页）。请上传含文字的文档，或扫描件的 PDF。"
    ),
    "The spreadsheet contains no data: every sheet is empty. Upload a file with content.": (
        "表格中没有数据：所有工作表都是空的。请上传有内容的文件。"
    ),
    "The spreadsheet has more than {limit} rows of data; it was not indexed. Split it into "
    "smaller files (or remove unused rows) and upload them.": (
        "表格的数据超过 {limit} 行，未建立索引。请拆分成较小的文件（或删除无用的行）后上传。"
    ),
    "The spreadsheet has more than {limit} filled cells; it was not indexed. Split it into "
    "smaller files (or remove unused columns) and upload them.": (
        "表格中有内容的单元格超过 {limit} 个，未建立索引。请拆分成较小的文件（或删除无用的列）后上传。"
    ),
    "The Excel file is damaged and cannot be read ({detail}). Open it in Excel, save it "
    "again as .xlsx and upload it.": (
        "Excel 文件已损坏，无法读取（{detail}）。请用 Excel 打开，重新另存为 .xlsx 后上传。"
    ),
    # --- ingest reasons: PowerPoint, HTML, spreadsheets (ingest/parse/{pptx,html,sheet}.py) ---
    "The PowerPoint file is damaged and could not be read ({detail}). "
    "Open it in PowerPoint, save it again as .pptx and upload it.": (
        "PowerPoint 文件已损坏，无法读取（{detail}）。请用 PowerPoint 打开，重新另存为 .pptx 后上传。"
    ),
    "The presentation contains no text (its slides hold only pictures or shapes). "
    "Add the text, or upload it as a PDF of images to be read by OCR.": (
        "演示文稿中没有文字（幻灯片只有图片或形状）。请添加文字，或将其导出为图片 PDF 上传以进行 OCR 识别。"
    ),
    "The file is named {suffix} but is not an HTML page (it contains binary data); it may "
    "be damaged or mislabelled. Save the page again as HTML and upload it.": (
        "文件名为 {suffix}，但不是 HTML 网页（包含二进制数据）；文件可能已损坏或扩展名有误。"
        "请重新将网页另存为 HTML 后上传。"
    ),
    "The page contains no text in its main content (only markup, scripts or navigation). "
    "Check that you saved the page itself, not a frame or a redirect.": (
        "网页正文中没有文字（只有标记、脚本或导航）。请确认保存的是网页本身，而不是框架或跳转页。"
    ),
    "The page is nested more than {depth} elements deep and could not be read completely; "
    "it may be malformed. Save it again (for example, print it to PDF) and upload that.": (
        "网页的元素嵌套超过 {depth} 层，无法完整读取；文件可能格式有误。"
        "请重新保存（例如打印为 PDF）后上传。"
    ),
    # The document page of a deck (web/templates/document.html).
    "Slides": "幻灯片",
    "slide {n}": "第 {n} 张幻灯片",
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
    "The file is named {suffix} but is not a PNG, JPEG or TIFF image; it may be damaged "
    "or mislabelled. Save it again as an image and upload it again.": (
        "文件名为 {suffix}，但不是 PNG、JPEG 或 TIFF 图片；"
        "文件可能已损坏或扩展名有误。请重新另存为图片后上传。"
    ),
    "The image could not be decoded ({detail}); it may be damaged or truncated. "
    "Save it again and upload it again.": (
        "无法解码该图片（{detail}）；文件可能已损坏或不完整。请重新保存后上传。"
    ),
    "The image is {megapixels} megapixels, over the limit of {limit} megapixels; it was "
    "not read (it may be a decompression bomb). Scale it down and upload it again.": (
        "图片为 {megapixels} 百万像素，超过 {limit} 百万像素的上限；"
        "未读取（可能是解压炸弹）。请缩小后重新上传。"
    ),
    "The file is an image: its text can only be read with OCR, which is not enabled on "
    "this server. An administrator can enable it (install the OCR extra with pip install "
    "'kb[ocr]'; it is on once installed unless KB_OCR_ENABLED=false; see \"OCR\" in the README), or upload a "
    "version of the document with text.": (
        "该文件是图片：其中的文字只能通过 OCR 读取，而本服务器未启用 OCR。"
        "管理员可以启用（用 pip install 'kb[ocr]' 安装 OCR 扩展；安装后即启用，除非设置了 "
        "KB_OCR_ENABLED=false；参见 README 中的“OCR”一节），或者上传含文字的文档版本。"
    ),
    "The PDF has no text layer: it looks scanned (pages are images) and needs OCR, which "
    "is not enabled on this server. An administrator can enable it (install the OCR "
    "extra with pip install 'kb[ocr]'; it is on once installed unless KB_OCR_ENABLED=false; see \"OCR\" in the "
    "README), or run the file through OCR (for example 'ocrmypdf') and upload the result.": (
        "该 PDF 没有文字层：看起来是扫描件（页面是图片），需要 OCR，而本服务器未启用 OCR。"
        "管理员可以启用（用 pip install 'kb[ocr]' 安装 OCR 扩展；安装后即启用，除非设置了 "
        "KB_OCR_ENABLED=false；参见 README 中的“OCR”一节），"
        "或者先用 OCR 工具（例如 'ocrmypdf'）处理文件后上传结果。"
    ),
    "OCR is enabled but could not be loaded ({detail}). An administrator should "
    "reinstall the OCR extra (pip install 'kb[ocr]'); then retry the document.": (
        "OCR 已启用，但无法加载（{detail}）。"
        "管理员应重新安装 OCR 扩展（pip install 'kb[ocr]'），然后重试该文档。"
    ),
    "OCR of page {page} took longer than {seconds} s (KB_OCR_PAGE_TIMEOUT_SECONDS) and "
    "was stopped; the scan may be very large or dense. Upload a smaller or clearer scan.": (
        "第 {page} 页的 OCR 超过 {seconds} 秒（KB_OCR_PAGE_TIMEOUT_SECONDS），已停止；"
        "扫描件可能过大或过于密集。请上传更小或更清晰的扫描件。"
    ),
    "OCR of the document took longer than {seconds} s (KB_OCR_TIMEOUT_SECONDS) and was "
    "stopped after {pages} pages. Split it into smaller files and upload them again.": (
        "文档的 OCR 超过 {seconds} 秒（KB_OCR_TIMEOUT_SECONDS），"
        "在处理 {pages} 页后已停止。请拆分为较小的文件后重新上传。"
    ),
    "The document has {pages} scanned pages, more than the {limit} that OCR reads per "
    "document (KB_OCR_MAX_PAGES); it was not read. Split it into smaller files, or "
    "upload a version with a text layer.": (
        "该文档有 {pages} 页扫描页，超过每个文档最多 OCR {limit} 页的上限"
        "（KB_OCR_MAX_PAGES）；未读取。请拆分为较小的文件，或上传带文字层的版本。"
    ),
    "OCR found no text in the scanned pages. Check that the right file was uploaded and "
    "that the scan is legible.": (
        "OCR 未在扫描页中找到文字。请检查上传的文件是否正确、扫描件是否清晰。"
    ),
    "waiting for OCR": "等待 OCR",
    "OCR page {page} of {pages}": "OCR 第 {page} 页，共 {pages} 页",
    "OCR done: {pages} pages": "OCR 完成：共 {pages} 页",
    "all OCR processes are busy": "所有 OCR 进程都在忙",
    "OCR": "文字识别（OCR）",
    "{n} pages read from scans by OCR": "{n} 页由 OCR 从扫描件识别",
    "Low OCR confidence on pages {pages}: check their text against the original.": (
        "第 {pages} 页的 OCR 置信度较低：请对照原件核对其文字。"
    ),
    # --- page preview (app/documents/preview.py) ---
    "Preview": "预览",
    "Page preview": "页面预览",
    "Pages of this passage": "该段落所在的页",
    "The passage continues on page {n}": "段落在第 {n} 页继续",
    "Close preview": "关闭预览",
    "Page {n} of {name}, the passage marked": "{name} 的第 {n} 页，已标出该段落",
    "Page {n} of {name}": "{name} 的第 {n} 页",
    "The passage could not be located on this page, so nothing is marked; its text is below.": (
        "未能在本页找到该段落，因此没有标记；段落文字见下方。"
    ),
    "Text of the passage": "段落文字",
    "Back to the document": "返回文档",
    "This page is not in the document.": "文档中没有这一页。",
    "This PDF cannot be read, so its pages cannot be shown.": "无法读取此 PDF，因此无法显示其页面。",
    "Page previews exist only for PDF documents.": "只有 PDF 文档才有页面预览。",
    # --- collection access (app/collections/access.py, access_pages.py) ---
    "Access": "访问权限",
    "Private": "私有",
    "Everyone": "所有人",
    "Make visible to everyone": "设为所有人可见",
    "Make private": "设为私有",
    "group": "用户组",
    "user": "用户",
    "User": "用户",
    "Group": "用户组",
    "read": "只读",
    "read and write": "读写",
    "Grant": "授权",
    "or a group": "或选择用户组",
    "Only administrators can see it.": "只有管理员可以看到。",
    "Private: only administrators and those granted access see it": (
        "私有：只有管理员和获得授权的人可以看到"
    ),
    "Groups": "用户组",
    "A group names several people at once when a private collection is shared "
    "(Collections page).": "共享私有知识库时，可以用用户组一次授权多人（见“知识库”页面）。",
    "Remove": "移除",
    "No members yet.": "还没有成员。",
    "Add member": "添加成员",
    "Delete the group {name}?": "删除用户组 {name}？",
    "Delete group": "删除用户组",
    "No groups yet.": "还没有用户组。",
    "Create a group": "创建用户组",
    "no group named {name!r}": "没有名为 {name!r} 的用户组",
    "no group with id {id}": "没有编号为 {id} 的用户组",
    "no user named {name!r}": "没有名为 {name!r} 的用户",
    "you may read the collection {name!r} but not change it; ask an administrator "
    "for write access": "你可以查看知识库 {name!r}，但不能修改；请向管理员申请写权限",
    "a group name needs 1 to 100 characters": "用户组名称需要 1 到 100 个字符",
    "the group {name!r} exists already": "用户组 {name!r} 已存在",
    "name one user or one group": "请指定一个用户或一个用户组",
    "access is read or write, not {level!r}": "权限只能是 read 或 write，不能是 {level!r}",
    "no collection to search: ask an administrator for access": (
        "没有可搜索的知识库：请向管理员申请访问权限"
    ),
    "Searched: {names}": "已搜索：{names}",
    "Not searched (another embedding model): {names}": "未搜索（使用其他嵌入模型）：{names}",
    "in {collection}": "位于 {collection}",
    "All collections": "全部知识库",
    # --- documents and upload pages ---
    "A .zip archive is unpacked on the server the same way: at most {entries} entries and "
    "{total} unpacked in all; each file at most {size}; archives inside it, links and "
    "unsafe paths are refused.": (
        ".zip 压缩包会在服务器上以同样方式解压：最多 {entries} 个条目，解压后总计不超过 {total}；"
        "每个文件不超过 {size}；其中的压缩包、链接和不安全的路径会被拒绝。"
    ),
    "A whole knowledge base (administrators)": "整个知识库（管理员）",
    "Actions": "操作",
    "Apply": "应用",
    "Ascending": "升序",
    "Descending": "降序",
    "Choose": "选择",
    "Choose a folder": "选择文件夹",
    "Choose documents first (the boxes in the first column).": "请先选择文档（第一列的复选框）。",
    "Choose every document on this page": "选择本页的全部文档",
    "Choose {name}": "选择 {name}",
    "Clear filters": "清除筛选",
    "Delete the {n} chosen documents? This cannot be undone.": (
        "删除选中的 {n} 个文档？此操作无法撤销。"
    ),
    "Index the {n} chosen documents again?": "重新索引选中的 {n} 个文档？",
    "Every accepted file in the folder and its subfolders is uploaded; each file's folder "
    "(such as “handbook/hr”) becomes one of its tags, so you can filter by it on the "
    "documents page.": (
        "文件夹及其子文件夹中所有支持的文件都会上传；每个文件所在的文件夹"
        "（例如“handbook/hr”）会成为它的一个标签，可在文档页按此筛选。"
    ),
    "Filter documents": "筛选文档",
    "Name or title": "名称或标题",
    "Search by name or title": "按名称或标题搜索",
    "No documents match these filters.": "没有符合这些筛选条件的文档。",
    "to see every document.": "以查看全部文档。",
    "No documents yet.": "还没有文档。",
    "Upload the first ones: they are searchable as soon as they are indexed.": (
        "上传第一批文档：索引完成后即可搜索。"
    ),
    "Order": "顺序",
    "Sort by": "排序方式",
    "Tag": "标签",
    "Type": "类型",
    "Retrying will fail the same way: the file itself is the problem. Upload the complete "
    "file again.": "重试仍会以同样的方式失败：问题在于文件本身。请重新上传完整的文件。",
    "Showing {first}–{last} of {total} documents": "显示第 {first}–{last} 个，共 {total} 个文档",
    "There is no page {asked}; this is the last page ({page} of {pages}).": (
        "没有第 {asked} 页；这是最后一页（第 {page} 页，共 {pages} 页）。"
    ),
    "Time left, estimated from the progress so far": "剩余时间，根据目前的进度估算",
    "about {n} s left": "剩余约 {n} 秒",
    "about {n} min left": "剩余约 {n} 分钟",
    "With the chosen documents:": "对选中的文档：",
    "Documents deleted: {n}.": "已删除文档：{n} 个。",
    "Documents queued to be indexed again: {n}.": "已排队重新索引的文档：{n} 个。",
    "Skipped: {n} (not yours to delete, being ingested, or gone).": (
        "已跳过：{n} 个（不是你上传的、正在导入或已不存在）。"
    ),
    "Sending… {percent}%": "正在发送… {percent}%",
    "Sent; the server is storing the files…": "已发送；服务器正在保存文件…",
    "The upload did not reach the server (network error). Try again.": (
        "上传未能到达服务器（网络错误）。请重试。"
    ),
    "archive: unpacked on the server": "压缩包：将在服务器上解压",
    "larger than the limit: it will be rejected": "超过大小上限：将被拒绝",
    "not accepted: it will be rejected": "不支持的类型：将被拒绝",
    "{n} files, {size} in all": "{n} 个文件，共 {size}",
    "{accepted} accepted, {duplicate} duplicates, {rejected} rejected": (
        "已接受 {accepted} 个，重复 {duplicate} 个，拒绝 {rejected} 个"
    ),
    # Reasons of a .zip upload's entries and of bulk actions (app/documents/service.py).
    "only administrators can upload .zip archives; unpack it and upload its files": (
        "只有管理员可以上传 .zip 压缩包；请解压后上传其中的文件"
    ),
    "the file is not a readable .zip archive ({detail})": "该文件不是可读取的 .zip 压缩包（{detail}）",
    "the archive has {count} entries, more than the limit of {limit}": (
        "压缩包有 {count} 个条目，超过 {limit} 个的上限"
    ),
    "the archive unpacks to {size}, more than the limit of {limit} (it may be a zip bomb)": (
        "压缩包解压后为 {size}，超过 {limit} 的上限（可能是解压炸弹）"
    ),
    "the entry's path is unsafe (absolute, or with '..'); it was skipped": (
        "该条目的路径不安全（绝对路径或含有“..”）；已跳过"
    ),
    "the entry is a symbolic link; links are not followed": "该条目是符号链接；不会跟随链接",
    "archives inside an archive are not unpacked; unpack it and upload its files": (
        "压缩包中的压缩包不会被解压；请解压后上传其中的文件"
    ),
    "the entry is encrypted; upload an archive without a password": (
        "该条目已加密；请上传没有密码的压缩包"
    ),
    "the entry unpacks to {size}, more than the limit of {limit} per file": (
        "该条目解压后为 {size}，超过每个文件 {limit} 的上限"
    ),
    "the entry is compressed more than {ratio}:1, as only zip bombs are; it was skipped": (
        "该条目的压缩比超过 {ratio}:1，只有解压炸弹才会这样；已跳过"
    ),
    "the entry is damaged or uses an unsupported compression ({detail})": (
        "该条目已损坏或使用了不支持的压缩方式（{detail}）"
    ),
    "no such document": "没有这个文档",
    "editors can delete only their own documents": "编辑者只能删除自己上传的文档",
    "it is being ingested; wait until it is ready or failed": "正在导入；请等到它就绪或失败",
    # --- chunk editing ---
    "Edit": "编辑",
    "Edit passages": "编辑段落",
    "Done editing": "完成编辑",
    "Fix a passage's text, or leave it out of search, without uploading the document again.": (
        "修改段落的文本，或让它不出现在搜索中，无需重新上传文档。"
    ),
    "History": "历史",
    "Edited": "已编辑",
    "(deleted user)": "（已删除的用户）",
    "Text before this edit": "本次编辑前的文本",
    "No changes yet: this passage is as it was parsed.": "尚无改动：这段文字与解析时相同。",
    "Text of this passage": "这段文字的内容",
    "Left out of search until it is enabled again.": "在重新启用之前不会出现在搜索结果中。",
    "Saving embeds the passage again, so search finds it by its new text at once; the old text is kept in its history. Re-ingesting the document replaces its passages and loses these edits.": "保存后会重新为这段文字生成向量，搜索立即按新文本找到它；旧文本保留在历史中。重新导入该文档会替换它的所有段落，这些编辑将丢失。",
    "editors can change only the chunks of their own documents": "编辑者只能修改自己上传的文档中的段落",
    "a chunk's text cannot be empty": "段落的文本不能为空",
    "a chunk's text may be at most {max} characters (this is {n})": "段落的文本最多 {max} 个字符（当前为 {n} 个）",
    "no chunk with id {id} in this document": "该文档中没有 ID 为 {id} 的段落",
    "no chunk with id {id}": "没有 ID 为 {id} 的段落",
    "the document is not ready (it is being ingested, or failed); edit its chunks when it is ready": "文档尚未就绪（正在导入或导入失败）；请在它就绪后再编辑其段落",
    "the embedding model could not embed the new text, so nothing was changed; try again later ({reason})": "嵌入模型无法为新文本生成向量，因此未做任何更改；请稍后再试（{reason}）",
}

CATALOGS: dict[str, dict[str, str]] = {"en": {}, "zh": ZH}
